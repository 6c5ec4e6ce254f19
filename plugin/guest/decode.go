package guest

import (
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/internal/jsonscan"
)

// The host functions' answers, decoded without encoding/json: its
// reflection costs about 38 µs per answer inside the sandbox against 3 µs
// natively, and a delivery reads seven answers (BENCHMARKS.md, issue 13).
// Each decoder reads its type's members by the names of their JSON tags,
// exactly as the ABI schema spells them; TestDecodersAgree holds every one
// to encoding/json on values with every field set.

// decoder reads the members of one answer type it knows.
type decoder[T any] = jsonscan.Member[T]

// decodeAnswer decodes a host function's answer into v: an object (or
// null, which leaves v as it is, as encoding/json does), its failure in
// "error", members known to member, the rest skipped.
func decodeAnswer[T any](b []byte, v *T, fault *abi.Fault, member decoder[T]) error {
	return jsonscan.Decode("answer", b, v, answerReader(fault, member))
}

// answerReader reads an answer's object: its members, and its failure into
// fault (the answer's embedded abi.Fault).
func answerReader[T any](fault *abi.Fault, member decoder[T]) func(s *jsonscan.Scanner, v *T) error {
	return jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, v *T) (bool, error) {
		if string(key) == "error" {
			return true, jsonscan.Ptr(s, &fault.Error, decodeError)
		}
		return member(s, key, v)
	})
}

var decodeError = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, e *abi.Error) (bool, error) {
	switch string(key) {
	case "code":
		return true, s.String((*string)(&e.Code))
	case "message":
		return true, s.String(&e.Message)
	}
	return false, nil
})

func noMembers(*jsonscan.Scanner, []byte, *abi.Empty) (bool, error) { return false, nil }

func installationMember(s *jsonscan.Scanner, key []byte, v *abi.InstallationResponse) (bool, error) {
	switch string(key) {
	case "id":
		return true, s.String(&v.ID)
	case "external_id":
		return true, s.String(&v.ExternalID)
	case "base_url":
		return true, s.String(&v.BaseURL)
	case "organizations":
		return true, jsonscan.Slice(s, &v.Organizations, orgSettings)
	}
	return false, nil
}

var orgSettings = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, o *abi.InstallationOrgSettings) (bool, error) {
	switch string(key) {
	case "id":
		return true, s.String(&o.ID)
	case "inbound_assignee":
		return true, s.Bool(&o.InboundAssignee)
	case "inbound_status":
		return true, s.Bool(&o.InboundStatus)
	case "outbound_assignee":
		return true, s.Bool(&o.OutboundAssignee)
	case "outbound_status":
		return true, s.Bool(&o.OutboundStatus)
	case "status_mappings":
		return true, jsonscan.Slice(s, &o.StatusMappings, statusMapping)
	}
	return false, nil
})

var statusMapping = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, m *abi.StatusMapping) (bool, error) {
	switch string(key) {
	case "jira_project":
		return true, s.String(&m.JiraProject)
	case "resolve_status":
		return true, s.String(&m.ResolveStatus)
	case "unresolve_status":
		return true, s.String(&m.UnresolveStatus)
	}
	return false, nil
})

func jiraMember(s *jsonscan.Scanner, key []byte, v *abi.JiraResponse) (bool, error) {
	switch string(key) {
	case "status":
		return true, s.Int(&v.Status)
	case "body":
		return true, s.String(&v.Body)
	}
	return false, nil
}

func groupsLinkedMember(s *jsonscan.Scanner, key []byte, v *abi.GroupsLinkedResponse) (bool, error) {
	if string(key) == "groups" {
		return true, jsonscan.Slice(s, &v.Groups, linkedGroup)
	}
	return false, nil
}

var linkedGroup = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, g *abi.LinkedGroup) (bool, error) {
	return groupMember(s, key, &g.ID, &g.Organization, &g.Project, &g.Assignee, &g.Status)
})

// groupMember reads the members a linked group and a group share.
func groupMember(s *jsonscan.Scanner, key []byte, id, organization, project *string, assignee **string, status *string) (bool, error) {
	switch string(key) {
	case "id":
		return true, s.String(id)
	case "organization":
		return true, s.String(organization)
	case "project":
		return true, s.String(project)
	case "assignee":
		return true, s.StringPtr(assignee)
	case "status":
		return true, s.String(status)
	}
	return false, nil
}

func usersMember(s *jsonscan.Scanner, key []byte, v *abi.UsersByEmailResponse) (bool, error) {
	if string(key) == "users" {
		return true, jsonscan.Slice(s, &v.Users, platformUser)
	}
	return false, nil
}

var platformUser = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, u *abi.PlatformUser) (bool, error) {
	switch string(key) {
	case "id":
		return true, s.String(&u.ID)
	case "verified":
		return true, s.Bool(&u.Verified)
	case "projects":
		return true, s.Strings(&u.Projects)
	}
	return false, nil
})

func assignMember(s *jsonscan.Scanner, key []byte, v *abi.GroupsAssignResponse) (bool, error) {
	if string(key) == "changed" {
		return true, s.Int(&v.Changed)
	}
	return false, nil
}

func stateMember(s *jsonscan.Scanner, key []byte, v *abi.StateGetResponse) (bool, error) {
	switch string(key) {
	case "value":
		return true, s.String(&v.Value)
	case "found":
		return true, s.Bool(&v.Found)
	}
	return false, nil
}

func groupGetMember(s *jsonscan.Scanner, key []byte, v *abi.GroupGetResponse) (bool, error) {
	if string(key) == "group" {
		return true, jsonscan.Ptr(s, &v.Group, groupInfo)
	}
	return false, nil
}

var groupInfo = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, g *abi.GroupInfo) (bool, error) {
	if string(key) == "issue_keys" {
		return true, s.Strings(&g.IssueKeys)
	}
	return groupMember(s, key, &g.ID, &g.Organization, &g.Project, &g.Assignee, &g.Status)
})

func userGetMember(s *jsonscan.Scanner, key []byte, v *abi.UserGetResponse) (bool, error) {
	if string(key) == "user" {
		return true, jsonscan.Ptr(s, &v.User, userInfo)
	}
	return false, nil
}

var userInfo = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, u *abi.UserInfo) (bool, error) {
	switch string(key) {
	case "id":
		return true, s.String(&u.ID)
	case "emails":
		return true, jsonscan.Slice(s, &u.Emails, userEmail)
	}
	return false, nil
})

var userEmail = jsonscan.Fields(func(s *jsonscan.Scanner, key []byte, e *abi.UserEmail) (bool, error) {
	switch string(key) {
	case "email":
		return true, s.String(&e.Email)
	case "verified":
		return true, s.Bool(&e.Verified)
	}
	return false, nil
})
