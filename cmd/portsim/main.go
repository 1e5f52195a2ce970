// Command portsim simulates ephemeral port allocation and exhaustion in
// virtual time. Run "portsim --help" for the commands.
package main

import "os"

func main() {
	os.Exit(execute(os.Args[1:], &IOStreams{Out: os.Stdout, ErrOut: os.Stderr}))
}
