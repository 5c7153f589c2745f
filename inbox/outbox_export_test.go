package inbox

// DigestScan is the query EnqueueDigests runs every second, for the test
// of its plan.
const DigestScan = digestScan
