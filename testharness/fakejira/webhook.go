package fakejira

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
)

// WebhookUserAgent is the User-Agent of Jira Server 9's webhook sender,
// Atlassian's HTTP client library. Receivers sometimes log or match it.
const WebhookUserAgent = "Atlassian HttpClient 4.0.1 / JIRA-9.12.2 (912002) / Default"

// SendWebhook POSTs body to url the way Jira delivers a webhook: JSON with
// Jira's exact Content-Type spelling, Jira's User-Agent, and a fresh
// X-Atlassian-Webhook-Identifier (read it back from resp.Request.Header).
// client nil means http.DefaultClient. The caller closes resp.Body.
func SendWebhook(ctx context.Context, client *http.Client, url string, body []byte) (*http.Response, error) {
	return sendWebhook(ctx, client, url, body, nil)
}

// sendWebhook is SendWebhook with headers set over the defaults: Fire adds
// the version's User-Agent and Jira 10's body signature.
func sendWebhook(ctx context.Context, client *http.Client, url string, body []byte, extra http.Header) (*http.Response, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("fakejira: webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("User-Agent", WebhookUserAgent)
	// Receivers use the identifier to drop redeliveries, so each call gets
	// its own; a test that wants to redeliver sends the same request again.
	req.Header.Set("X-Atlassian-Webhook-Identifier", strconv.FormatInt(rand.Int64(), 10))
	for k, v := range extra {
		req.Header[k] = v
	}
	return client.Do(req)
}
