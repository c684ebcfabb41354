#pragma once
namespace asyncops {
// main() of asyncops-worker: flags, signals, then Worker::run().
int worker_main(int argc, char** argv);
}  // namespace asyncops
