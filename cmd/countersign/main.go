// Command countersign is the access gateway and its command line; see
// internal/cli.
package main

import (
	"os"

	"github.com/countersign/countersign/internal/cli"
)

func main() { os.Exit(cli.Execute()) }
