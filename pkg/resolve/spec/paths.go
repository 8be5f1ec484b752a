package spec

import (
	"path"
	"strings"
)

// ParsePaths parses "/absolute/path,..." as DEPENDENCY_CONFIG and DEPENDENCY_SOCKET
// take them. A path must be absolute and clean and must not end in "/": a config
// destination is a file, and its base name also names the template it is rendered
// from (/configmaps/<base>/<base>).
func ParsePaths(value string) ([]string, error) {
	return parseList(value, pathsForm, func(item string) (string, []string) {
		switch {
		case !strings.HasPrefix(item, "/"):
			return "", []string{"is not an absolute path"}
		case strings.HasSuffix(item, "/"):
			return "", []string{"ends with '/' (a file path is expected)"}
		case path.Clean(item) != item:
			return "", []string{"is not a clean path (" + quote(path.Clean(item), maxQuotedItem) + " would be)"}
		}
		return item, nil
	})
}
