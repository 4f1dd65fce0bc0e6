"""The chaos suite's report: one table (fault | accepted | stuck | lost | dup | 5xx | 503 | settled |
re-sent | workers alive), the soak's memory growth, the MCP outage's welcome figures, the re-send ratio."""

from __future__ import annotations


def memory_growth(memory: list[dict]) -> dict:
    """RSS growth % of each process from its first sample after warm-up (the first experiment) to the
    end, counted only over the same pid (a fault that killed a worker restarts its count)."""
    growth = {}
    for name, (pid, last) in (memory[-1] if memory else {}).items():
        samples = [m[name][1] for m in memory[1:] if name in m and m[name][0] == pid] or [last]
        growth[name] = {
            "pid": pid,
            "samples": len(samples),
            "from_kib": samples[0],
            "to_kib": last,
            "growth_pct": round(100 * (last - samples[0]) / samples[0], 1) if samples[0] else None,
        }
    return growth


def table(rows: list[dict], memory: list[dict], args) -> None:
    columns = [
        ("fault", 19),
        ("accepted", 9),
        ("stuck", 6),
        ("lost", 5),
        ("dup", 4),
        ("5xx", 4),
        ("503", 4),
        ("settled", 8),
        ("re-sent", 12),
        ("workers alive", 13),
    ]

    def cells(row: dict) -> dict:
        return {
            "fault": row["fault"],
            "accepted": row["registrations"] + row["messages"],
            "stuck": row["stuck"] + row["unanswered"] + row["im_runs_stuck"],
            "lost": row["lost"],
            "dup": row["dup"] + row["dup_replies"],
            "5xx": row["http_500"],
            "503": row["refused"],
            "settled": f"{row['recovered_s']}s" if row["recovered_s"] is not None else "NO",
            "re-sent": f"{row['resent']}/{row['jobs']} ({row['lost_msgs']} lost)",
            "workers alive": row["workers_alive"],
        }

    print()
    print(" ".join(name.ljust(width) for name, width in columns))
    for row in rows:
        values = cells(row)
        print(" ".join(str(values[name]).ljust(width) for name, width in columns))
    print(
        "\naccepted: registrations (201) and IM, voice messages (202), ends, or bots (blacklist_down) of the"
        "\nexperiment. stuck: registrations not"
        "\nsucceeded, messages unanswered or untranscribed, summaries not ready, bots not at the current"
        "\nversion, IM runs not finished by the end of the bounded wait. lost: accepted work with no trace"
        "\n(a summary missing, a version acknowledged but never received). dup: a default"
        "\nconversation, welcome, notification or auto-reply twice. 503: requests refused while PostgreSQL or"
        "\nthe web process was away (not accepted). re-sent: messages the jobs sweep re-sent / the experiment's"
        "\njobs (of them provably lost). workers alive: Celery workers running 3 s after the load (before any"
        f"\nrevive). Bounded wait: {args.wait:g} s per experiment."
    )
    for name, figures in memory_growth(memory).items():
        print(f"RSS {name}: {figures}")
    for row in rows:
        if "personalised" in row:
            print(
                f"{row['fault']}: personalised welcomes {row['personalised']} ({row['personalised_pct']} %), "
                f"p95 request→welcome {row['welcome_p95_s']} s; written from the platform's facts "
                f"{row['from_platform_facts']}, agent calls failed {row['agent_failed']}"
            )
    none = [row for row in rows if row["fault"] == "none" and row.get("jobs")]
    if none:
        print(f"re-send ratio without a fault: {sum(r['resent'] for r in none)}/{sum(r['jobs'] for r in none)} jobs")
