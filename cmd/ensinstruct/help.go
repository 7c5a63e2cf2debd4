package main

import (
	"embed"
	"strings"
)

// The long help of the commands, one text file each.
//
//go:embed help/*.txt
var helpFS embed.FS

// helpText returns the long help of the command called name.
func helpText(name string) string {
	b, err := helpFS.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic(err) // the files are part of the binary
	}
	return strings.TrimSuffix(string(b), "\n")
}
