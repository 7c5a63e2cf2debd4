package output

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Container is the file type records are written in: JSON Lines or
// Parquet. The format (alpaca, openai, …) decides the columns either way.
type Container string

// The supported containers.
const (
	// ContainerJSONL is one JSON object per line.
	ContainerJSONL Container = "jsonl"
	// ContainerParquet is an Apache Parquet file whose columns hold the
	// same nested structure as the JSONL lines.
	ContainerParquet Container = "parquet"
)

// ResolveContainer returns the container named by a --container value,
// or, when name is "", the one the output path's extension implies:
// Parquet for .parquet, JSONL for anything else (stdout included).
func ResolveContainer(name, path string) (Container, error) {
	switch Container(name) {
	case ContainerJSONL, ContainerParquet:
		return Container(name), nil
	case "":
		if strings.EqualFold(filepath.Ext(path), ".parquet") {
			return ContainerParquet, nil
		}
		return ContainerJSONL, nil
	}
	return "", fmt.Errorf("--container: unknown container %q (want %s or %s)", name, ContainerJSONL, ContainerParquet)
}
