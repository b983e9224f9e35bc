// Package archtest holds tests of the project's architecture: which
// packages may import which, and that every package and exported name is
// documented. It has no code of its own.
package archtest
