#pragma once
// Tells the service manager (systemd, Type=notify) about the daemon's life:
// READY=1 once it serves, STOPPING=1 when it starts to stop. Outside
// systemd ($NOTIFY_SOCKET unset) each call does nothing.
#include <string>

namespace asyncops {

// READY=1 with STATUS=status (e.g. "serving http://127.0.0.1:8080").
void notify_service_ready(const std::string& status);
// STOPPING=1.
void notify_service_stopping();

}  // namespace asyncops
