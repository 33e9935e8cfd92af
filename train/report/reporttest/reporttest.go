// Package reporttest checks generated report pages the way a reader's
// browser would meet them: the HTML parses, every image it references
// exists and decodes, no image is blank, and nothing is fetched from the
// network.
package reporttest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/net/html"
)

// Page is what CheckPage found in a page.
type Page struct {
	Images int    // <img> elements checked
	Text   string // the page's visible text, whitespace collapsed
	// Commands are the shell commands the page suggests: the text of its
	// elements of class "command".
	Commands []string
}

// CheckPage reads the HTML file at path and checks it; the error names the
// first problem.
func CheckPage(path string) (Page, error) {
	var page Page
	raw, err := os.ReadFile(path)
	if err != nil {
		return page, err
	}
	doc, err := html.Parse(bytes.NewReader(raw))
	if err != nil {
		return page, fmt.Errorf("%s: %w", path, err)
	}
	var text strings.Builder
	var walk func(n *html.Node) error
	walk = func(n *html.Node) error {
		if n.Type == html.TextNode && (n.Parent == nil || (n.Parent.Data != "style" && n.Parent.Data != "script")) {
			text.WriteString(n.Data + " ")
		}
		if n.Type == html.ElementNode {
			if hasClass(n, "command") {
				page.Commands = append(page.Commands, strings.TrimSpace(textOf(n)))
			}
			if n.Data == "script" {
				return fmt.Errorf("%s: has a <script>; the report must need no JavaScript", path)
			}
			for _, a := range n.Attr {
				if (a.Key == "src" || (a.Key == "href" && n.Data == "link")) && remote(a.Val) {
					return fmt.Errorf("%s: <%s %s=%q> would fetch from the network", path, n.Data, a.Key, a.Val)
				}
				if n.Data == "img" && a.Key == "src" {
					if err := checkImage(filepath.Dir(path), a.Val); err != nil {
						return fmt.Errorf("%s: <img>: %w", path, err)
					}
					page.Images++
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(doc); err != nil {
		return page, err
	}
	if bytes.Contains(raw, []byte("url(http")) || bytes.Contains(raw, []byte("@import")) {
		return page, fmt.Errorf("%s: its style loads something from the network", path)
	}
	page.Text = strings.Join(strings.Fields(text.String()), " ")
	return page, nil
}

func hasClass(n *html.Node, class string) bool {
	for _, a := range n.Attr {
		if a.Key == "class" && slices.Contains(strings.Fields(a.Val), class) {
			return true
		}
	}
	return false
}

// textOf is the text inside n.
func textOf(n *html.Node) string {
	if n.Type == html.TextNode {
		return n.Data
	}
	var b strings.Builder
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		b.WriteString(textOf(c))
	}
	return b.String()
}

// SplitCommand splits a suggested command line into its arguments as a
// POSIX shell would, for the quoting the report uses: single quotes, with
// a backslash-escaped quote between two quoted parts for a quote inside.
func SplitCommand(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unclosed quote in %q", line)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

func remote(u string) bool {
	return strings.HasPrefix(u, "http:") || strings.HasPrefix(u, "https:") || strings.HasPrefix(u, "//")
}

// checkImage decodes a data: URI or a file beside the page and fails on
// an image of (nearly) one colour.
func checkImage(dir, src string) error {
	var b []byte
	if rest, ok := strings.CutPrefix(src, "data:image/png;base64,"); ok {
		var err error
		if b, err = base64.StdEncoding.DecodeString(rest); err != nil {
			return fmt.Errorf("data URI: %w", err)
		}
	} else {
		var err error
		if b, err = os.ReadFile(filepath.Join(dir, filepath.FromSlash(src))); err != nil {
			return err
		}
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%.40s: %w", src, err)
	}
	if v := variance(img); v < 1 {
		return fmt.Errorf("%.40s: blank image (%v, pixel variance %.3g)", src, img.Bounds().Size(), v)
	}
	return nil
}

// variance is the variance of the pixels' grey levels (0-255).
func variance(img image.Image) float64 {
	r := img.Bounds()
	var sum, sq, n float64
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			g := (0.299*float64(cr) + 0.587*float64(cg) + 0.114*float64(cb)) / 257
			sum += g
			sq += g * g
			n++
		}
	}
	if n == 0 {
		return 0
	}
	m := sum / n
	return sq/n - m*m
}
