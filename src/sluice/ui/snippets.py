"""The lines a user pastes to send a source's events here: analytics.js, Python, Node, curl.

analytics.js is Segment's own snippet (version 5.2.0, as Segment's app shows it) with one line
added: `analytics._cdn = "<this server>"`. analytics.js then loads its settings from
`<this server>/v1/projects/<write key>/settings` instead of Segment's CDN, and those settings
(`apiHost`, see collector/settings_endpoint.py) send every call to this server. The script
itself comes from this server too once `sluice analytics-js install` ran (`self_hosted`): the
snippet then names no other host; before, from Segment's CDN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

SNIPPET_VERSION = "5.2.0"
CDN = "https://cdn.segment.com"

_SNIPPET = (
    '!function(){var i="analytics",analytics=window[i]=window[i]||[];if(!analytics.initialize)'
    'if(analytics.invoked)window.console&&console.error&&console.error("Segment snippet included'
    ' twice.");else{analytics.invoked=!0;analytics.methods=["trackSubmit","trackClick",'
    '"trackLink","trackForm","pageview","identify","reset","group","track","ready","alias",'
    '"debug","page","screen","once","off","on","addSourceMiddleware","addIntegrationMiddleware",'
    '"setAnonymousId","addDestinationMiddleware","register"];analytics.factory=function(e){'
    "return function(){if(window[i].initialized)return window[i][e].apply(window[i],arguments);"
    'var n=Array.prototype.slice.call(arguments);if(["track","screen","alias","group","page",'
    '"identify"].indexOf(e)>-1){var c=document.querySelector("link[rel=\'canonical\']");'
    'n.push({__t:"bpc",c:c&&c.getAttribute("href")||void 0,p:location.pathname,u:location.href,'
    "s:location.search,t:document.title,r:document.referrer})}n.unshift(e);analytics.push(n);"
    "return analytics}};for(var n=0;n<analytics.methods.length;n++){var key=analytics.methods[n];"
    "analytics[key]=analytics.factory(key)}analytics.load=function(key,n){var t=document."
    'createElement("script");t.type="text/javascript";t.async=!0;t.setAttribute('
    '"data-global-segment-analytics-key",i);t.src="__CDN__/analytics.js/v1/" + key + '
    '"/analytics.min.js";var r=document.getElementsByTagName("script")[0];r.parentNode.'
    "insertBefore(t,r);analytics._loadOptions=n};analytics._writeKey=__KEY__;;"
    f'analytics.SNIPPET_VERSION="{SNIPPET_VERSION}";\n'
    "  analytics._cdn = __BASE__; // settings, and so every call, go to Sluice\n"
    "  analytics.load(__KEY__);\n"
    "  analytics.page();\n"
    "  }}();"
)


@dataclass(frozen=True, slots=True)
class Snippets:
    base_url: str
    analytics_js: str
    python: str
    node: str
    curl: str
    self_hosted: bool = False  # the script is served by Sluice (analytics.js installed)


def base_url(public_url: str | None, scheme: str, host: str | None) -> str:
    """Where clients reach this server: the configured public URL, else what the browser used."""
    if public_url:
        parts = urlsplit(public_url)
        return f"{parts.scheme or 'https'}://{parts.netloc}{parts.path.rstrip('/')}"
    return f"{scheme}://{host or 'localhost'}"


def snippets(base: str, write_key: str, *, self_hosted: bool = False) -> Snippets:
    """The snippets for one write key; `self_hosted`: analytics.js is installed here, so the
    script is loaded from `base` rather than Segment's CDN."""
    key = json.dumps(write_key)
    js = (
        _SNIPPET.replace("__CDN__", base if self_hosted else CDN)
        .replace("__KEY__", key)
        .replace("__BASE__", json.dumps(base))
    )
    python = (
        "# pip install segment-analytics-python\n"
        "import segment.analytics as analytics\n\n"
        f"analytics.write_key = {key}\n"
        f"analytics.host = {json.dumps(base)}\n\n"
        'analytics.track("user-1", "Signed Up", {"plan": "pro"})\n'
        "analytics.flush()"
    )
    node = (
        "// npm install @segment/analytics-node\n"
        "import { Analytics } from '@segment/analytics-node'\n\n"
        f"const analytics = new Analytics({{ writeKey: {key}, host: {json.dumps(base)} }})\n\n"
        "analytics.track({ userId: 'user-1', event: 'Signed Up', properties: { plan: 'pro' } })\n"
        "await analytics.closeAndFlush()"
    )
    curl = (
        f"curl {base}/v1/track -u {write_key}: \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        """  -d '{"userId": "user-1", "event": "Signed Up", "properties": {"plan": "pro"}}'"""
    )
    return Snippets(base, f"<script>\n  {js}\n</script>", python, node, curl, self_hosted)
