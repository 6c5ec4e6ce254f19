package webhook

import (
	"fmt"
	"strconv"

	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
)

// The readers of fields whose JSON types Jira and the tools that replay
// its webhooks do not agree on, and which name the field in their errors.

// stringField reads a string or null into dst.
func stringField(s *jsonscan.Scanner, name string, dst *string) error {
	if isNull, err := s.Null(); isNull || err != nil {
		return err
	}
	if s.Peek() != '"' {
		return fmt.Errorf("webhook body: %s is not a string", name)
	}
	v, err := s.Str()
	*dst = v
	return err
}

// idField reads a string, a number or null: Jira sends ids as strings,
// tools that replay webhooks often as numbers.
func idField(s *jsonscan.Scanner, name string, dst *string) error {
	switch c := s.Peek(); {
	case c == '"':
		return stringField(s, name, dst)
	case c == 'n':
		_, err := s.Null()
		return err
	case c == '-' || '0' <= c && c <= '9':
		v, err := s.Number()
		*dst = string(v)
		return err
	}
	return fmt.Errorf("webhook body: %s: want a string or number id", name)
}

// intField reads an integer, a numeric string, or null.
func intField(s *jsonscan.Scanner, name string, dst *int64) error {
	var text string
	switch c := s.Peek(); {
	case c == 'n':
		_, err := s.Null()
		return err
	case c == '"':
		v, err := s.Str()
		if err != nil {
			return err
		}
		text = v
	case c == '-' || '0' <= c && c <= '9':
		v, err := s.Number()
		if err != nil {
			return err
		}
		text = string(v)
	default:
		return fmt.Errorf("webhook body: %s: want an integer timestamp", name)
	}
	v, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook body: %s: want an integer timestamp, got %.20s", name, text)
	}
	*dst = v
	return nil
}
