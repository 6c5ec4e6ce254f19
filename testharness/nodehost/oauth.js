// OAuth 1.0a RSA-SHA1 signing of a Jira request (RFC 5849), as Jira
// Server's application links want it. The host signs; the plugin never
// sees a credential.
import { createSign, randomBytes } from 'node:crypto';

// RFC 3986 percent-encoding: encodeURIComponent leaves !'()* alone.
export function pct(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// authorization returns the Authorization header for method on url (a URL
// object, its query included) with the installation's credentials.
export function authorization(method, url, creds) {
  const oauth = {
    oauth_consumer_key: creds.consumer_key,
    oauth_nonce: randomBytes(16).toString('hex'),
    oauth_signature_method: 'RSA-SHA1',
    oauth_timestamp: String(Math.floor(Date.now() / 1000)),
    oauth_token: creds.access_token,
    oauth_version: '1.0',
  };
  const pairs = Object.entries(oauth);
  for (const [k, v] of url.searchParams) pairs.push([k, v]);
  const normalized = pairs
    .map(([k, v]) => [pct(k), pct(v)])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  // The base URL: scheme and host lower-case, default port left out (the
  // URL object does both), no query or fragment.
  const base = `${url.protocol}//${url.host}${url.pathname}`;
  const text = [method.toUpperCase(), pct(base), pct(normalized)].join('&');
  const signer = createSign('RSA-SHA1');
  signer.update(text);
  oauth.oauth_signature = signer.sign(creds.private_key_pem, 'base64');
  return 'OAuth ' + Object.entries(oauth).map(([k, v]) => `${k}="${pct(v)}"`).join(', ');
}
