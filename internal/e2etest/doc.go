// Package e2etest drives the real followpub binary in tests, as a user would: it builds the
// binary once per test binary, sets up the World a run needs (the API simulator on loopback, a
// fresh topic on a real broker, a state path, and the environment pointing at them), starts and
// signals followpub processes with captured output, and reads back everything a topic holds.
//
// It is for tests only. Everything runs on 127.0.0.1.
package e2etest
