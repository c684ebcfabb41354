#pragma once
// The users service: the User service of the pattern. Its own SQLite
// database (DATA_DIR/users.db) holds the users; the daemon's read model is
// fed from the events it publishes.
#include <string>

#include "workers/worker.h"

namespace asyncops {

// create_user {email, name}: rejected invalid_email, email_in_use.
// update_user {email?, name?}: rejected user_not_found, invalid_email, email_in_use.
// delete_user: rejected user_not_found.
Service users_service();

// A practical check of an address's shape: local@domain, with a dotted
// domain of letters, digits and hyphens; no spaces; at most 254 characters.
bool is_valid_email(const std::string& email);

}  // namespace asyncops
