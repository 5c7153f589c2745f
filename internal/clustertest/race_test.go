//go:build race

package clustertest_test

// raceEnabled: the test binary runs under the race detector.
const raceEnabled = true
