// The substitutions uWSGI makes in a configuration value, in its order:
// the magic variables (%d, %k, …), then $(ENV), then @(FILE) and
// @(exec://COMMAND), then %(name) references and their arithmetic. Each
// pass reads "X(...)" up to the parenthesis that closes it, so
// "%((%k * 2) + 1)" is one reference.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// substituter expands the substitutions uWSGI makes in an ini value.
type substituter struct {
	path     string                           // the ini file, absolute
	section  string                           // the section asked for, if the file was named FILE:SECTION
	first    string                           // the first ini file read, for %D, %P, …
	hostname string                           // for %h
	getenv   func(string) (string, bool)      // for $(NAME)
	lookup   func(name string) (string, bool) // for %(name): options and custom keys set earlier
}

// expand makes the four passes over value. Only @(…) can fail: uWSGI
// stops when the file or command cannot be read, and so does gowsgi.
func (s *substituter) expand(value string) (string, error) {
	value = s.magicPass(value)
	value, _ = references(value, '$', func(name string) (string, bool, error) {
		v, ok := s.getenv(name)
		return v, ok, nil
	})
	value, err := references(value, '@', func(name string) (string, bool, error) {
		v, err := readAt(name)
		return v, true, err
	})
	if err != nil {
		return "", err
	}
	value, _ = references(value, '%', func(name string) (string, bool, error) {
		v, ok := s.placeholder(name)
		return v, ok, nil
	})
	return value, nil
}

// magicPass replaces "%c" by the magic variable c. As in uWSGI, "%(" is
// left for the reference pass, "%%" is "%", and a letter that names no
// variable is replaced by nothing.
func (s *substituter) magicPass(value string) string {
	var b strings.Builder
	for i := 0; i < len(value); i++ {
		if value[i] != '%' || i+1 == len(value) {
			b.WriteByte(value[i])
			continue
		}
		i++
		if value[i] == '(' {
			b.WriteString("%(")
			continue
		}
		b.WriteString(s.magic(value[i]))
	}
	return b.String()
}

// magic resolves the one-letter variable %c: of the ini file, %d (its
// directory, with a trailing slash), %p (its path), %s (its name), %n (its
// name without the extension), %e (the extension), %c (the name of its
// directory), %0 to %9 (the directory's components), %x (the section asked
// for) and %o (the file as given); in upper case, the same of the first ini
// file read. Then %h (the host name), %k (the CPUs), %v (the working
// directory), %u %U %g %G (the user's and group's ids and names), %t and %T
// (the time in seconds and microseconds), %V (the uWSGI version gowsgi
// follows) and %% (a "%").
func (s *substituter) magic(c byte) string {
	path := s.path
	if c >= 'A' && c <= 'Z' && strings.IndexByte("DPSNECX", c) >= 0 {
		path, c = s.first, c+'a'-'A'
	}
	dir := filepath.Dir(path)
	base := filepath.Base(path)
	switch {
	case c == 'd':
		return strings.TrimSuffix(dir, "/") + "/"
	case c == 'p':
		return path
	case c == 's':
		return base
	case c == 'n':
		return strings.TrimSuffix(base, filepath.Ext(base))
	case c == 'e':
		return strings.TrimPrefix(filepath.Ext(base), ".")
	case c == 'c':
		return filepath.Base(dir)
	case c >= '0' && c <= '9':
		parts := strings.FieldsFunc(dir, func(r rune) bool { return r == '/' })
		if n := int(c - '0'); n < len(parts) {
			return parts[n]
		}
		return ""
	case c == 'x' || c == 'X':
		return s.section
	case c == 'o' || c == 'O':
		return path
	case c == 'h':
		return s.hostname
	case c == 'k':
		return strconv.Itoa(runtime.NumCPU())
	case c == 'v':
		dir, _ := os.Getwd()
		return dir
	case c == 'u':
		return strconv.Itoa(os.Getuid())
	case c == 'U':
		if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
			return u.Username
		}
		return strconv.Itoa(os.Getuid())
	case c == 'g':
		return strconv.Itoa(os.Getgid())
	case c == 'G':
		if g, err := user.LookupGroupId(strconv.Itoa(os.Getgid())); err == nil {
			return g.Name
		}
		return strconv.Itoa(os.Getgid())
	case c == 't':
		return strconv.FormatInt(time.Now().Unix(), 10)
	case c == 'T':
		return strconv.FormatInt(time.Now().UnixMicro(), 10)
	case c == 'V':
		return uwsgiVersion
	case c == '%':
		return "%"
	}
	return ""
}

// uwsgiVersion is the uWSGI release whose configuration gowsgi reads (%V).
const uwsgiVersion = "2.0.21"

// references replaces each "sigil(key)" of value by resolve(key); the key
// ends at the parenthesis that closes the opening one. A key resolve does
// not know stays as written.
func references(value string, sigil byte, resolve func(string) (string, bool, error)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(value); i++ {
		end := -1
		if value[i] == sigil && i+1 < len(value) && value[i+1] == '(' {
			end = closingParen(value, i+1)
		}
		if end < 0 {
			b.WriteByte(value[i])
			continue
		}
		got, ok, err := resolve(value[i+2 : end])
		if err != nil {
			return "", err
		}
		if !ok {
			b.WriteString(value[i : end+1])
		} else {
			b.WriteString(got)
		}
		i = end
	}
	return b.String(), nil
}

// closingParen returns the index of the ")" that closes the "(" at open,
// or -1; an empty "()" closes nothing, as in uWSGI.
func closingParen(value string, open int) int {
	depth := 0
	for j := open + 1; j < len(value); j++ {
		switch value[j] {
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
				continue
			}
			if j == open+1 {
				return -1
			}
			return j
		}
	}
	return -1
}

// readAt reads uWSGI's @(FILE) (without one trailing newline) or
// @(exec://COMMAND) (the command's output, run by /bin/sh).
func readAt(name string) (string, error) {
	var out []byte
	var err error
	if command, ok := strings.CutPrefix(name, "exec://"); ok {
		out, err = exec.Command("/bin/sh", "-c", command).Output()
	} else {
		out, err = os.ReadFile(name)
	}
	if err != nil {
		return "", fmt.Errorf("@(%s): %w", name, err)
	}
	text := string(out)
	if strings.HasSuffix(text, "\n") || strings.HasSuffix(text, "\r") {
		text = text[:len(text)-1]
	}
	return text, nil
}

// placeholder resolves %(key). A key without a space names an option or a
// custom key. With spaces it is uWSGI's pipeline: each word is a number or
// an option's value, concatenated to what came before, or combined with it
// by the operator word before it (+ - * /, whole numbers; x/0 is 0); "++"
// and "--" add or take one. A word that names nothing counts as empty, so
// "%((%k * 2) + 1)", whose first word is "(2", is 1 in uWSGI as here.
func (s *substituter) placeholder(key string) (string, bool) {
	if !strings.Contains(key, " ") {
		return s.lookup(key)
	}
	current, op := "", ""
	for _, word := range strings.Fields(key) {
		switch word {
		case "+", "-", "*", "/":
			op = word
			continue
		case "++", "--":
			n := atoi64(current)
			if word == "++" {
				n++
			} else {
				n--
			}
			current, op = strconv.FormatInt(n, 10), ""
			continue
		}
		value := word
		if strings.Trim(word, "0123456789") != "" {
			value, _ = s.lookup(word)
		}
		current, op = arithmetic(current, op, value), ""
	}
	return current, true
}

// arithmetic applies op to a and b, or concatenates them when op is "".
func arithmetic(a, op, b string) string {
	x, y := atoi64(a), atoi64(b)
	switch op {
	case "+":
		return strconv.FormatInt(x+y, 10)
	case "-":
		return strconv.FormatInt(x-y, 10)
	case "*":
		return strconv.FormatInt(x*y, 10)
	case "/":
		if y == 0 {
			return "0"
		}
		return strconv.FormatInt(x/y, 10)
	}
	return a + b
}

// atoi64 reads a leading whole number as strtoll(3) does: 0 when none.
func atoi64(s string) int64 {
	n, _ := strconv.ParseInt(leadingNumber(s), 10, 64)
	return n
}

// hostname is %h's value; empty when the system will not say.
func hostname() string {
	name, _ := os.Hostname()
	return name
}
