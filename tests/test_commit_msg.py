"""The commit-message check the repository's commit-msg hook runs."""

import sys

from utils.runtime.storage import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools"))
import commit_msg  # noqa: E402


def test_a_short_subject_and_a_body_pass_and_the_rest_is_named():
    assert commit_msg.problems("Grade adapters in batches\n\nWhy and how.\n# comment\n") == []
    assert commit_msg.problems("x" * 72) == []
    assert commit_msg.problems("x" * 73) == ["the subject has 73 characters (at most 72)"]
    assert commit_msg.problems("Subject\nbody right away") == [
        "the second line must be blank: details go in the body below it"
    ]
    assert commit_msg.problems("# only a comment\n\n") == ["the subject line is empty"]
