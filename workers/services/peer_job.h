#pragma once
// The peers' job (../shared/peers/README.md, "The job"), as a service, so
// that bench/peers.sh can run the same job on asyncops as on BullMQ and
// Celery: check both fields of {email, name} and answer the id. It keeps
// nothing of its own; the outcome's resource, {"id": ...}, goes to the
// daemon's read model like any other.
#include "workers/worker.h"

namespace asyncops {

// run_job {email, name} with params {id}: completed job_done with the
// resource {"id": id} at the command's resource path; rejected
// invalid_command (no id), invalid_email, invalid_name.
Service peer_job_service();

}  // namespace asyncops
