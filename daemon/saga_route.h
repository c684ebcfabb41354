#pragma once
// A route's "steps" (issue 14; docs/design/sagas.md, "The route"): parsed
// and checked here, apart from routes.cpp, so that RouteTable::load_json
// only has to call parse_saga_steps for a route that has the key.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/result.h"
#include "store/saga.h"

namespace asyncops {

// Parses a route's "steps" value into the saga's plan.
// route_name says which route an error is about, e.g.
// "routes[2] (POST /orders)": every error starts with it. saga_command is
// the route's own "command", which no step may call (a cycle).
// known_services, when not empty, lists the services a step may name.
//
// Refused, each with one line naming the route and the step: not an array
// of 1 to saga::k_max_steps objects; an unknown key; a name that is
// missing, longer than saga::k_max_step_name bytes, not [A-Za-z0-9_-], or
// used twice; a service that is missing, malformed or not known; a command
// missing or empty; a "compensate" that is not a non-empty string, or is on
// the last step (nothing after it can fail, and its completion is the
// saga's); a step command or compensation that is the saga's own command;
// a "timeout" that is not a positive duration; a "max_attempts" outside 1
// to 100.
Result<std::vector<saga::StepPlan>> parse_saga_steps(const nlohmann::json& steps, const std::string& route_name,
                                                     const std::string& saga_command,
                                                     const std::vector<std::string>& known_services = {});

// The services a plan uses, in step order, each once: the daemon binds a
// commands socket for each (RouteTable::services must include them).
std::vector<std::string> saga_services(const std::vector<saga::StepPlan>& plan);

}  // namespace asyncops
