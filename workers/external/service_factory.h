#pragma once
// A Service from its [service.NAME] section (shared/service_config.h): the
// built-in users handlers under that name, or an exec or http handler run
// by the ExternalRunner.
#include "shared/result.h"
#include "shared/service_config.h"
#include "workers/worker.h"

namespace asyncops {

Result<Service> make_service(const ServiceConfig& config);

}  // namespace asyncops
