package report

import "strings"

// mdBlock is one block of the Markdown a sweep writes (results.md):
// a heading, a paragraph, a table or a list. The page renders blocks with
// html/template, so every piece of text is escaped.
type mdBlock struct {
	Heading int      // 1 for #, 2 for ##, ...; 0 for other blocks
	Text    []mdSpan // a heading's or paragraph's text
	Head    [][]mdSpan
	Rows    [][][]mdSpan
	Items   [][]mdSpan // list items
}

// mdSpan is a run of text, in code (`...`) or not.
type mdSpan struct {
	Text string
	Code bool
}

// parseMarkdown reads the subset of Markdown that results.md uses: ATX
// headings, paragraphs, pipe tables (a header row, a --- row, body rows,
// \| for a pipe inside a cell), "- " lists and `code` spans. Anything else
// reads as paragraph text.
func parseMarkdown(md string) []mdBlock {
	var out []mdBlock
	lines := strings.Split(strings.ReplaceAll(md, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); {
		line := strings.TrimSpace(lines[i])
		switch {
		case line == "":
			i++
		case strings.HasPrefix(line, "#"):
			level := len(line) - len(strings.TrimLeft(line, "#"))
			out = append(out, mdBlock{Heading: level, Text: mdInline(strings.TrimSpace(line[level:]))})
			i++
		case strings.HasPrefix(line, "|") && i+1 < len(lines) && isTableRule(lines[i+1]):
			b := mdBlock{Head: tableCells(line)}
			for i += 2; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
				b.Rows = append(b.Rows, tableCells(strings.TrimSpace(lines[i])))
			}
			out = append(out, b)
		case strings.HasPrefix(line, "- "):
			var b mdBlock
			for ; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "- "); i++ {
				b.Items = append(b.Items, mdInline(strings.TrimSpace(lines[i])[2:]))
			}
			out = append(out, b)
		default:
			var text []string
			for ; i < len(lines); i++ {
				l := strings.TrimSpace(lines[i])
				if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "|") || strings.HasPrefix(l, "- ") {
					break
				}
				text = append(text, l)
			}
			out = append(out, mdBlock{Text: mdInline(strings.Join(text, " "))})
		}
	}
	return out
}

// isTableRule says whether line is a table's header rule: | --- | :-: |.
func isTableRule(line string) bool {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") {
		return false
	}
	for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
		if strings.Trim(strings.TrimSpace(c), ":-") != "" || !strings.Contains(c, "-") {
			return false
		}
	}
	return true
}

// tableCells splits a table row at its unescaped pipes.
func tableCells(row string) [][]mdSpan {
	row = strings.TrimSuffix(strings.TrimPrefix(row, "|"), "|")
	var cells [][]mdSpan
	var cell strings.Builder
	for i := 0; i < len(row); i++ {
		switch {
		case row[i] == '\\' && i+1 < len(row) && row[i+1] == '|':
			cell.WriteByte('|')
			i++
		case row[i] == '|':
			cells = append(cells, mdInline(strings.TrimSpace(cell.String())))
			cell.Reset()
		default:
			cell.WriteByte(row[i])
		}
	}
	return append(cells, mdInline(strings.TrimSpace(cell.String())))
}

// mdInline splits text into plain and `code` spans; an unclosed backtick
// is plain text.
func mdInline(text string) []mdSpan {
	var out []mdSpan
	for text != "" {
		open := strings.IndexByte(text, '`')
		if open < 0 {
			break
		}
		end := strings.IndexByte(text[open+1:], '`')
		if end < 0 {
			break
		}
		if open > 0 {
			out = append(out, mdSpan{Text: text[:open]})
		}
		out = append(out, mdSpan{Text: text[open+1 : open+1+end], Code: true})
		text = text[open+1+end+1:]
	}
	if text != "" {
		out = append(out, mdSpan{Text: text})
	}
	return out
}
