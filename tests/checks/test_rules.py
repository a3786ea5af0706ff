"""Classification of a single ping (rules.classify), table-driven. Pure: no database."""

import json
from datetime import UTC, datetime

import pytest

from apps.checks.rules import Outcome, PingEvent, PingKind, Rules, classify, item_counts

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
DEFAULT = Rules()
POST_ONLY = Rules(post_only=True)
FAIL_WORDS = Rules(failure_keywords=("ERROR", "failed"))
SUCCESS_WORDS = Rules(success_keywords=("backup complete",))
BOTH_WORDS = Rules(success_keywords=("ok",), failure_keywords=("failed",))
ABSOLUTE = Rules(partial_max_failed=5)
RATIO = Rules(partial_max_ratio=0.001)  # more than 1 in 1,000 fails the run


def ping(kind="success", **facts):
    return PingEvent(n=1, kind=PingKind(kind), received_at=NOW, **facts)


@pytest.mark.parametrize(
    ("event", "rules", "outcome"),
    [
        # --- what counts as a ping: POST only ---
        pytest.param(ping(method="GET"), POST_ONLY, Outcome.IGNORED, id="post-only-get"),
        pytest.param(ping(method="HEAD"), POST_ONLY, Outcome.IGNORED, id="post-only-head"),
        pytest.param(ping(method="POST"), POST_ONLY, Outcome.SUCCESS, id="post-only-post"),
        pytest.param(
            ping("fail", method="GET"), POST_ONLY, Outcome.IGNORED, id="post-only-get-fail"
        ),
        pytest.param(
            ping("start", method="HEAD"), POST_ONLY, Outcome.IGNORED, id="post-only-head-start"
        ),
        pytest.param(ping("fail", method="POST"), POST_ONLY, Outcome.FAIL, id="post-only-fail"),
        pytest.param(ping(method="GET"), DEFAULT, Outcome.SUCCESS, id="get-counts-by-default"),
        pytest.param(ping(method="HEAD"), DEFAULT, Outcome.SUCCESS, id="head-counts-by-default"),
        # --- keywords ---
        pytest.param(
            ping(body="Backup failed: disk full"), FAIL_WORDS, Outcome.FAIL, id="failure-keyword"
        ),
        pytest.param(
            ping(body="backup FAILED"), FAIL_WORDS, Outcome.FAIL, id="failure-keyword-any-case"
        ),
        pytest.param(
            ping(body="error: x"), FAIL_WORDS, Outcome.FAIL, id="failure-keyword-lower-body"
        ),
        pytest.param(
            ping(body="all fine"), FAIL_WORDS, Outcome.SUCCESS, id="no-failure-keyword-success"
        ),
        pytest.param(
            ping(body="Backup Complete in 3s"),
            SUCCESS_WORDS,
            Outcome.SUCCESS,
            id="success-keyword-any-case",
        ),
        pytest.param(
            ping(body="started copying"),
            SUCCESS_WORDS,
            Outcome.IGNORED,
            id="success-keyword-configured-no-match",
        ),
        pytest.param(
            ping(), SUCCESS_WORDS, Outcome.IGNORED, id="success-keyword-configured-empty-body"
        ),
        pytest.param(
            ping(body="ok: 3 done, 1 failed"), BOTH_WORDS, Outcome.FAIL, id="failure-wins"
        ),
        pytest.param(ping(body="OK"), BOTH_WORDS, Outcome.SUCCESS, id="both-configured-success"),
        pytest.param(
            ping(body="nothing to say"), BOTH_WORDS, Outcome.IGNORED, id="both-configured-none"
        ),
        pytest.param(
            ping("log", body="ERROR: connection reset"),
            FAIL_WORDS,
            Outcome.FAIL,
            id="log-with-failure-keyword-fails",
        ),
        pytest.param(
            ping("log", body="progress 10%"), FAIL_WORDS, Outcome.LOG, id="log-without-keyword"
        ),
        pytest.param(
            ping("log", body="copying"),
            SUCCESS_WORDS,
            Outcome.LOG,
            id="log-no-success-keyword-stays-log",
        ),
        pytest.param(
            ping("log", body="backup complete"),
            SUCCESS_WORDS,
            Outcome.SUCCESS,
            id="log-with-success-keyword-succeeds",
        ),
        pytest.param(
            ping("fail", body="backup complete"),
            SUCCESS_WORDS,
            Outcome.FAIL,
            id="fail-ping-not-turned-into-success",
        ),
        pytest.param(
            ping(body="failed"),
            Rules(failure_keywords=("",)),
            Outcome.SUCCESS,
            id="empty-keyword-matches-nothing",
        ),
        pytest.param(
            ping(body="Backup failed", method="GET"),
            Rules(post_only=True, failure_keywords=("failed",)),
            Outcome.IGNORED,
            id="post-only-before-keywords",
        ),
        pytest.param(
            ping(body="failed", attempt=1, max_attempts=3),
            FAIL_WORDS,
            Outcome.RETRYING,
            id="keyword-failure-with-attempts-left-retries",
        ),
        # --- retries ---
        pytest.param(ping("fail", attempt=1, max_attempts=3), DEFAULT, Outcome.RETRYING, id="1/3"),
        pytest.param(ping("fail", attempt=2, max_attempts=3), DEFAULT, Outcome.RETRYING, id="2/3"),
        pytest.param(ping("fail", attempt=3, max_attempts=3), DEFAULT, Outcome.FAIL, id="3/3"),
        pytest.param(
            ping("fail", attempt=4, max_attempts=3), DEFAULT, Outcome.FAIL, id="beyond-max"
        ),
        pytest.param(ping("fail", attempt=1), DEFAULT, Outcome.FAIL, id="attempt-without-max"),
        pytest.param(ping("fail", max_attempts=3), DEFAULT, Outcome.FAIL, id="max-without-attempt"),
        pytest.param(
            ping("fail", attempt=1, max_attempts=3, exit_status=75),
            DEFAULT,
            Outcome.RETRYING,
            id="retry-before-transient",
        ),
        pytest.param(
            ping("fail", attempt=3, max_attempts=3, exit_status=75),
            DEFAULT,
            Outcome.TRANSIENT,
            id="last-attempt-transient-status",
        ),
        pytest.param(
            ping(attempt=2, max_attempts=3),
            DEFAULT,
            Outcome.SUCCESS,
            id="success-after-retries",
        ),
        # --- exit statuses ---
        pytest.param(ping("fail", exit_status=75), DEFAULT, Outcome.TRANSIENT, id="exit-75"),
        pytest.param(ping("fail", exit_status=1), DEFAULT, Outcome.FAIL, id="exit-1"),
        pytest.param(ping("fail", exit_status=255), DEFAULT, Outcome.FAIL, id="exit-255"),
        pytest.param(ping(exit_status=0), DEFAULT, Outcome.SUCCESS, id="exit-0"),
        pytest.param(
            ping("fail", exit_status=75),
            Rules(transient_exit_statuses=frozenset()),
            Outcome.FAIL,
            id="no-transient-statuses",
        ),
        pytest.param(
            ping("fail", exit_status=111),
            Rules(transient_exit_statuses=frozenset({75, 111})),
            Outcome.TRANSIENT,
            id="custom-transient-status",
        ),
        pytest.param(
            ping("fail", exit_status=75),
            Rules(transient_exit_statuses=frozenset({111})),
            Outcome.FAIL,
            id="75-not-listed",
        ),
        # --- partial success: query counts ---
        pytest.param(ping(processed=1000, failed=0), RATIO, Outcome.SUCCESS, id="none-failed"),
        pytest.param(ping(processed=1000, failed=1), RATIO, Outcome.PARTIAL, id="ratio-at-limit"),
        pytest.param(
            ping(processed=1000, failed=2), RATIO, Outcome.PARTIAL_OVER_LIMIT, id="ratio-over"
        ),
        pytest.param(
            ping(processed=3000, failed=3), RATIO, Outcome.PARTIAL, id="ratio-at-limit-3000"
        ),
        pytest.param(
            ping(processed=3000, failed=4), RATIO, Outcome.PARTIAL_OVER_LIMIT, id="ratio-over-3000"
        ),
        pytest.param(ping(failed=2), RATIO, Outcome.PARTIAL, id="ratio-unknown-without-processed"),
        pytest.param(
            ping(processed=0, failed=2), RATIO, Outcome.PARTIAL_OVER_LIMIT, id="ratio-processed-0"
        ),
        pytest.param(
            ping(body='{"processed": 0, "failed": 1000}'),
            RATIO,
            Outcome.PARTIAL_OVER_LIMIT,
            id="json-everything-failed",
        ),
        pytest.param(ping(processed=0, failed=0), RATIO, Outcome.SUCCESS, id="nothing-to-do"),
        pytest.param(ping(processed=100, failed=5), ABSOLUTE, Outcome.PARTIAL, id="abs-at-limit"),
        pytest.param(
            ping(processed=100, failed=6), ABSOLUTE, Outcome.PARTIAL_OVER_LIMIT, id="abs-over"
        ),
        pytest.param(ping(failed=6), ABSOLUTE, Outcome.PARTIAL_OVER_LIMIT, id="abs-failed-only"),
        pytest.param(
            ping(processed=1000, failed=2),
            Rules(partial_max_failed=5, partial_max_ratio=0.001),
            Outcome.PARTIAL_OVER_LIMIT,
            id="either-limit-fails-ratio",
        ),
        pytest.param(
            ping(processed=1_000_000, failed=6),
            Rules(partial_max_failed=5, partial_max_ratio=0.001),
            Outcome.PARTIAL_OVER_LIMIT,
            id="either-limit-fails-absolute",
        ),
        pytest.param(
            ping(processed=10, failed=9), DEFAULT, Outcome.PARTIAL, id="no-limits-partial"
        ),
        pytest.param(
            ping(processed=1000, failed=0, body='{"failed": 900}'),
            RATIO,
            Outcome.SUCCESS,
            id="query-counts-win-over-body",
        ),
        pytest.param(
            ping("fail", processed=1000, failed=0), RATIO, Outcome.FAIL, id="fail-with-counts"
        ),
        # --- partial success: small JSON body ---
        pytest.param(
            ping(body='{"processed":1000,"failed":2}'),
            RATIO,
            Outcome.PARTIAL_OVER_LIMIT,
            id="json-over-ratio",
        ),
        pytest.param(
            ping(body='{"processed": 1000, "failed": 1}'),
            RATIO,
            Outcome.PARTIAL,
            id="json-at-ratio",
        ),
        pytest.param(
            ping(body='  \n{"processed": 10, "failed": 6, "note": "x"}\n'),
            ABSOLUTE,
            Outcome.PARTIAL_OVER_LIMIT,
            id="json-with-whitespace-and-extra-keys",
        ),
        pytest.param(
            ping(body='{"processed": 10, "failed": 0}'), ABSOLUTE, Outcome.SUCCESS, id="json-0"
        ),
        # --- malformed bodies are ignored: the ping is a plain success ---
        pytest.param(ping(body="{not json"), ABSOLUTE, Outcome.SUCCESS, id="json-malformed"),
        pytest.param(ping(body='{"failed": 9'), ABSOLUTE, Outcome.SUCCESS, id="json-truncated"),
        pytest.param(ping(body="[1, 2, 3]"), ABSOLUTE, Outcome.SUCCESS, id="json-list"),
        pytest.param(ping(body='"failed: 9"'), ABSOLUTE, Outcome.SUCCESS, id="json-string"),
        pytest.param(ping(body="9"), ABSOLUTE, Outcome.SUCCESS, id="json-number"),
        pytest.param(ping(body="null"), ABSOLUTE, Outcome.SUCCESS, id="json-null"),
        pytest.param(
            ping(body='{"failed": -9}'), ABSOLUTE, Outcome.SUCCESS, id="json-negative-failed"
        ),
        pytest.param(
            ping(body='{"failed": true}'),
            Rules(partial_max_failed=0),
            Outcome.SUCCESS,
            id="json-bool-failed",
        ),
        pytest.param(
            ping(body='{"failed": "9"}'), ABSOLUTE, Outcome.SUCCESS, id="json-string-failed"
        ),
        pytest.param(
            ping(body='{"failed": 9.0}'), ABSOLUTE, Outcome.SUCCESS, id="json-float-failed"
        ),
        pytest.param(
            ping(body='{"failed": null}'), ABSOLUTE, Outcome.SUCCESS, id="json-null-failed"
        ),
        pytest.param(
            ping(body='{"processed": -1000, "failed": 2}'),
            RATIO,
            Outcome.PARTIAL,
            id="json-negative-processed-ignored",
        ),
        pytest.param(
            ping(body='{"processed": true, "failed": 2}'),
            RATIO,
            Outcome.PARTIAL,
            id="json-bool-processed-ignored",
        ),
        pytest.param(
            ping(body='{"a":' + "[" * 2000 + "]" * 2000 + "}"),
            ABSOLUTE,
            Outcome.SUCCESS,
            id="json-deeply-nested-within-4kb",
        ),
        pytest.param(
            ping(body=json.dumps({"failed": 9, "pad": "x" * 5000})),
            ABSOLUTE,
            Outcome.SUCCESS,
            id="json-too-large-not-parsed",
        ),
        # --- huge bodies ---
        pytest.param(
            ping(body="x" * 5_000_000 + " failed"),
            FAIL_WORDS,
            Outcome.SUCCESS,
            id="huge-body-keyword-beyond-scan-limit",
        ),
        pytest.param(
            ping(body="ERROR " + "x" * 5_000_000),
            FAIL_WORDS,
            Outcome.FAIL,
            id="huge-body-keyword-at-start",
        ),
        pytest.param(
            ping(body="{" + "x" * 5_000_000),
            ABSOLUTE,
            Outcome.SUCCESS,
            id="huge-json-looking-body",
        ),
        # --- start, progress, log ---
        pytest.param(ping("start"), DEFAULT, Outcome.START, id="start"),
        pytest.param(ping("start", run_id="r1"), DEFAULT, Outcome.START, id="start-rid"),
        pytest.param(ping("progress", done=5, total=10), DEFAULT, Outcome.PROGRESS, id="progress"),
        pytest.param(ping("log"), DEFAULT, Outcome.LOG, id="log"),
        pytest.param(
            ping("start", body="failed"), FAIL_WORDS, Outcome.START, id="start-ignores-keywords"
        ),
        pytest.param(
            ping("progress", body="ERROR"),
            FAIL_WORDS,
            Outcome.PROGRESS,
            id="progress-ignores-keywords",
        ),
        pytest.param(
            ping("start", body='{"processed": 10, "failed": 9}'),
            ABSOLUTE,
            Outcome.START,
            id="start-ignores-counts",
        ),
        pytest.param(
            ping("start", method="POST"), POST_ONLY, Outcome.START, id="post-only-start-post"
        ),
    ],
)
def test_classify(event, rules, outcome):
    assert classify(event, rules) == outcome


@pytest.mark.parametrize(
    ("outcome", "finishes", "failure"),
    [
        pytest.param(Outcome.SUCCESS, True, False, id="success"),
        pytest.param(Outcome.PARTIAL, True, False, id="partial"),
        pytest.param(Outcome.FAIL, True, True, id="fail"),
        pytest.param(Outcome.PARTIAL_OVER_LIMIT, True, True, id="partial-over-limit"),
        pytest.param(Outcome.TRANSIENT, True, False, id="transient"),
        pytest.param(Outcome.RETRYING, True, False, id="retrying"),
        pytest.param(Outcome.START, False, False, id="start"),
        pytest.param(Outcome.PROGRESS, False, False, id="progress"),
        pytest.param(Outcome.LOG, False, False, id="log"),
        pytest.param(Outcome.IGNORED, False, False, id="ignored"),
    ],
)
def test_outcome_properties(outcome, finishes, failure):
    assert (outcome.finishes_run, outcome.is_failure) == (finishes, failure)


@pytest.mark.parametrize(
    ("event", "counts"),
    [
        pytest.param(ping(processed=7), (7, None), id="query-processed-only"),
        pytest.param(ping(failed=7), (None, 7), id="query-failed-only"),
        pytest.param(ping(body='{"processed":1000,"failed":2}'), (1000, 2), id="json"),
        pytest.param(ping(body='{"processed": 5}'), (5, None), id="json-processed-only"),
        pytest.param(ping(body='{"failed": false}'), (None, None), id="json-bool"),
        pytest.param(ping(body="{}"), (None, None), id="json-empty"),
        pytest.param(ping(body=""), (None, None), id="no-body"),
        pytest.param(ping(body="processed=5 failed=1"), (None, None), id="not-json"),
    ],
)
def test_item_counts(event, counts):
    assert item_counts(event) == counts
