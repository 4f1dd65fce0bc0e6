"""Cost of personal-data masking per LLM call: the gateway's mask + unmask work, p95, against the
same call without it.

No database is needed. A context of `--history` customer/consultant messages (one in five carries a
phone, an ID number, an e-mail or a card number) is sent to the fake OpenAI-compatible server over
HTTP `--calls` times without masking and `--calls` times masked the way the gateway masks
(`Masker.mask_messages` before, `unmask` of the answer after). Printed: p50/p95 of each and of the
masking work alone. Target: masking adds at most 2 ms p95 at --history 200.

    .venv/bin/python bench/masking.py --history 200 --calls 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from anmei.ai.masking import Masker  # noqa: E402
from tests.fakes.fake_openai import FakeOpenAI  # noqa: E402

SAMPLES = ("我的手机 139-1234-5678", "身份证 11010519491231002X", "邮箱 amy@example.com", "卡 6222021234567890128")


def _context(history: int) -> list[dict]:
    messages = [{"role": "system", "content": "你是安美智享的AI咨询助手。"}]
    for i in range(history):
        text = "玻尿酸能维持多久？价格大概多少？想预约周六下午面诊。" * 2
        if i % 5 == 0:
            text += SAMPLES[(i // 5) % len(SAMPLES)]
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return messages


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--history", type=int, default=200)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    fake = FakeOpenAI(api_key="sk-bench").start()
    fake.default_reply = "好的，我们会致电[PHONE_1]确认预约。"
    context = _context(args.history)
    plain, masked, work = [], [], []
    with httpx2.Client(headers={"authorization": "Bearer sk-bench"}, timeout=10) as client:
        url = fake.url + "/v1/chat/completions"
        for _ in range(args.calls):
            started = time.perf_counter()
            client.post(url, json={"model": "m", "messages": context}).json()
            plain.append((time.perf_counter() - started) * 1000)

            started = time.perf_counter()
            masker = Masker()
            body = masker.mask_messages(context)
            spent = time.perf_counter() - started
            answer = client.post(url, json={"model": "m", "messages": body}).json()
            after = time.perf_counter()
            masker.unmask(answer["choices"][0]["message"]["content"])
            spent += time.perf_counter() - after
            masked.append((time.perf_counter() - started) * 1000)
            work.append(spent * 1000)
    fake.stop()
    print(f"history={args.history} calls={args.calls}")
    print(f"call without masking  p50 {_p(plain, 50):.2f} ms  p95 {_p(plain, 95):.2f} ms")
    print(f"call with masking     p50 {_p(masked, 50):.2f} ms  p95 {_p(masked, 95):.2f} ms")
    print(f"masking work alone    p50 {_p(work, 50):.3f} ms  p95 {_p(work, 95):.3f} ms")


if __name__ == "__main__":
    main()
