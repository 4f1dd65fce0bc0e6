"""The seed's path SaaS → bot instance → LLM (seed 002 §3.5.2): `POST <callback_url>/astrbot-api/v1/llm/infer`.

The bot's own LLM provider answers; we send the built context and it sends back the text. The
request goes through the SSRF-guarded client and is signed like every platform→bot call
(`signed_call`: X-Anmei-Timestamp / X-Anmei-Signature with the bot's secret); the provider's API
key never leaves the bot (`llm_config.auth` stays empty).
Answer: `{"text": "...", "model": "...", "usage": {prompt_tokens, completion_tokens, total_tokens}}`.
"""

from __future__ import annotations

from anmei.ai.providers import AgentError, AgentRequest, AgentResult, upstream_status_error
from anmei.bots.models import BotInstance
from anmei.bots.services.instances import signed_call
from anmei.common.outbound import OutboundError

INFER_PATH = "/astrbot-api/v1/llm/infer"


def _bot(request: AgentRequest):
    bots = BotInstance.objects.filter(tenant_id=request.tenant_id, status=BotInstance.Status.ACTIVE)
    if request.bot_id:
        bot = bots.filter(pk=request.bot_id).first()
        if bot is not None:
            return bot
    return bots.order_by("id").first()


def run(request: AgentRequest) -> AgentResult:
    bot = _bot(request)
    if bot is None:
        raise AgentError("astrbot provider needs an active bot instance")
    body = {
        "llm_config": {"provider": request.app_id or "default", "model_id": request.model, "auth": {}},
        "context": request.messages or [{"role": "user", "content": request.query}],
        "inference_params": {"temperature": 0.7, "max_tokens": request.max_tokens, "stream": False},
        "user_id_for_llm": f"anmei-{request.tenant_id}-{request.customer_id}",
    }
    try:
        response = signed_call(bot=bot, path=INFER_PATH, payload=body, timeout=request.timeout)
    except OutboundError as exc:  # refused (SSRF rules), unreachable or timed out
        raise AgentError("timeout" if exc.category == "timeout" else f"bot unreachable: {exc.category}") from None
    if response.status_code != 200:
        raise upstream_status_error("bot", response, tenant_id=request.tenant_id)
    try:
        data = response.json()
    except ValueError:
        raise AgentError("bot answered non-JSON") from None
    text = (data.get("text") or "").strip() if isinstance(data, dict) else ""
    if not text:
        raise AgentError("bot answered without text")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return AgentResult(
        text=text,
        model=str(data.get("model") or request.model or "astrbot"),
        usage={k: usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")},
    )
