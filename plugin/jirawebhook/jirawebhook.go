// Package jirawebhook registers and removes the issue-updated webhook on
// Jira Server / Data Center: which API the Jira version offers, what body
// it takes, and how to read its answers. Signing and the webhook's secret
// stay with the host; the plugin writes placeholders the host fills in.
package jirawebhook

import (
	"encoding/json"
	"path"
	"strconv"
	"strings"

	"github.com/jirasync/jirasync/plugin/abi"
)

// Jira is the capability this package needs.
type Jira interface {
	JiraRequest(req abi.JiraRequest) (*abi.JiraResponse, error)
	Log(level, message string, fields map[string]any)
}

// Event is the one event jirasync subscribes to.
const Event = "jira:issue_updated"

// Register reads Jira's version, registers the webhook on the API that
// version offers (Jira 10 moved it), then removes req.Previous.
func Register(j Jira, req abi.RegisterWebhookRequest) (*abi.RegisterWebhookResponse, error) {
	if strings.TrimSpace(req.Name) == "" {
		return nil, abi.Errorf(abi.CodeInvalidRequest, "webhook name is empty")
	}
	version, major, err := serverVersion(j)
	if err != nil {
		return nil, err
	}
	var ref *abi.WebhookRef
	if major >= 10 {
		ref, err = registerJira10(j, req.Name)
	} else {
		ref, err = registerLegacy(j, req.Name)
	}
	if err != nil {
		return nil, err
	}
	if p := req.Previous; p != nil && p.ID != "" && *p != *ref {
		// The new webhook exists; failing to remove the old one must not
		// undo the install, but an operator should know of the duplicate.
		if err := Unregister(j, *p); err != nil {
			j.Log("warn", "could not remove the previous webhook on Jira; remove it by hand",
				map[string]any{"api": p.API, "webhook_id": p.ID, "error": err.Error()})
		}
	}
	j.Log("info", "webhook registered", map[string]any{"api": ref.API, "webhook_id": ref.ID, "jira_version": version})
	return &abi.RegisterWebhookResponse{Webhook: ref, JiraVersion: version}, nil
}

// Unregister removes a webhook; one already gone is fine.
func Unregister(j Jira, ref abi.WebhookRef) error {
	var p string
	switch ref.API {
	case abi.WebhookAPILegacy:
		p = "/rest/webhooks/1.0/webhook/" + ref.ID
	case abi.WebhookAPIJira10:
		p = "/rest/jira-webhook/1.0/webhooks/" + ref.ID
	default:
		return abi.Errorf(abi.CodeInvalidRequest, "unknown webhook API "+strconv.Quote(ref.API))
	}
	if ref.ID == "" || strings.ContainsAny(ref.ID, "/?#%") {
		return abi.Errorf(abi.CodeInvalidRequest, "webhook id "+strconv.Quote(ref.ID)+" is not an id")
	}
	resp, err := j.JiraRequest(abi.JiraRequest{Method: "DELETE", Path: p})
	if err != nil {
		return err
	}
	switch {
	case resp.Status/100 == 2, resp.Status == 404:
		return nil
	default:
		return answerError("removing the webhook", resp)
	}
}

func serverVersion(j Jira) (string, int, error) {
	resp, err := j.JiraRequest(abi.JiraRequest{Method: "GET", Path: "/rest/api/2/serverInfo"})
	if err != nil {
		return "", 0, err
	}
	if resp.Status != 200 {
		return "", 0, answerError("reading Jira's version", resp)
	}
	var info struct {
		Version        string `json:"version"`
		VersionNumbers []int  `json:"versionNumbers"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &info); err != nil {
		return "", 0, abi.Errorf(abi.CodeJiraRejected, "Jira's serverInfo is not JSON: "+err.Error())
	}
	major := 0
	if len(info.VersionNumbers) > 0 {
		major = info.VersionNumbers[0]
	} else if m, _, _ := strings.Cut(info.Version, "."); m != "" {
		major, _ = strconv.Atoi(m)
	}
	if major == 0 {
		return "", 0, abi.Errorf(abi.CodeJiraRejected, "Jira's serverInfo has no version")
	}
	return info.Version, major, nil
}

func registerLegacy(j Jira, name string) (*abi.WebhookRef, error) {
	body, _ := json.Marshal(map[string]any{"name": name, "url": abi.PlaceholderWebhookURL,
		"events": []string{Event}, "excludeBody": false})
	resp, err := j.JiraRequest(abi.JiraRequest{Method: "POST", Path: "/rest/webhooks/1.0/webhook", Body: string(body), Substitute: true})
	if err != nil {
		return nil, err
	}
	if resp.Status/100 != 2 {
		return nil, answerError("registering the webhook", resp)
	}
	var out struct {
		Self string `json:"self"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil || out.Self == "" {
		return nil, abi.Errorf(abi.CodeJiraRejected, "Jira registered the webhook but did not say where (no self link)")
	}
	return &abi.WebhookRef{API: abi.WebhookAPILegacy, ID: path.Base(strings.TrimRight(out.Self, "/"))}, nil
}

func registerJira10(j Jira, name string) (*abi.WebhookRef, error) {
	body, _ := json.Marshal(map[string]any{"name": name, "url": abi.PlaceholderWebhookURL,
		"events": []string{Event}, "active": true,
		"configuration": map[string]string{"EXCLUDE_BODY": "false", "SECRET": abi.PlaceholderWebhookSecret}})
	resp, err := j.JiraRequest(abi.JiraRequest{Method: "POST", Path: "/rest/jira-webhook/1.0/webhooks", Body: string(body), Substitute: true})
	if err != nil {
		return nil, err
	}
	if resp.Status/100 != 2 {
		return nil, answerError("registering the webhook", resp)
	}
	var out struct {
		ID json.Number `json:"id"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil || out.ID == "" {
		return nil, abi.Errorf(abi.CodeJiraRejected, "Jira registered the webhook but gave no id")
	}
	return &abi.WebhookRef{API: abi.WebhookAPIJira10, ID: out.ID.String()}, nil
}

// answerError turns a Jira error answer into an ABI error carrying Jira's
// own words, which the setup page shows the operator.
func answerError(doing string, resp *abi.JiraResponse) error {
	var e struct {
		ErrorMessages []string          `json:"errorMessages"`
		Errors        map[string]string `json:"errors"`
		Message       string            `json:"message"`
	}
	msgs := []string{}
	if json.Unmarshal([]byte(resp.Body), &e) == nil {
		msgs = append(msgs, e.ErrorMessages...)
		for k, v := range e.Errors {
			msgs = append(msgs, k+": "+v)
		}
		if e.Message != "" {
			msgs = append(msgs, e.Message)
		}
	}
	if len(msgs) == 0 && resp.Body != "" && len(resp.Body) < 300 {
		msgs = append(msgs, strings.TrimSpace(resp.Body))
	}
	text := "Jira answered HTTP " + strconv.Itoa(resp.Status) + " " + doing
	if len(msgs) > 0 {
		text += ": " + strings.Join(msgs, "; ")
	}
	code := abi.CodeJiraRejected
	if resp.Status >= 500 {
		code = abi.CodeUnavailable
	}
	return abi.Errorf(code, text)
}
