"""Worked solution for 02_client.ipynb (see 01_config.py for the format)."""

from labkit import EndpointError, RateLimitError, chat_request, parse_retry_after


# %% exercise: call_endpoint
async def call_endpoint(client, record):
    """Send one record; return the completion's text or raise a typed error."""
    response = await client.post("/v1/chat/completions", json=chat_request(record))
    if response.status_code == 429:
        hint = parse_retry_after(response.headers)
        raise RateLimitError(f"429: {response.text}", retry_after=hint)
    if not response.is_success:
        status = response.status_code
        raise EndpointError(f"{status}: {response.text}", status=status)
    return response.json()["choices"][0]["message"]["content"]
