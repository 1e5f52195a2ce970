// Command portsim simulates ephemeral port allocation and exhaustion in
// virtual time. Run "portsim --help" for the commands.
package main

import (
	"os"

	"github.com/portsim/portsim/sim/realsock"
)

func main() {
	// A crosscheck run starts this executable again in a private network
	// namespace; that child does its work here and exits.
	realsock.ServeChild()
	os.Exit(execute(os.Args[1:], &IOStreams{Out: os.Stdout, ErrOut: os.Stderr}))
}
