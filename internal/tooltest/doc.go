// Package tooltest finds the external programs some tests drive — promtool and prometheus from
// Debian's prometheus package, headless Chromium, chattr — and runs Chromium so that it reaches
// nothing but the loopback pages it is given.
//
// A missing program skips the test with the command that installs it (scripts/deploy/tools.sh),
// or fails it when CI is set: under CI no test passes by skipping.
package tooltest
