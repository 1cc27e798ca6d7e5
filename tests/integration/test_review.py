"""Template stages (review apps): isolated instances, deployed and destroyed by name."""

from __future__ import annotations

import yaml


def setup_review(p):
    (p.root / "config" / "review.yml").write_text(
        yaml.safe_dump(
            {
                "transport": "local",
                "deploy_to": "review-{instance}",
                "templates": [{"src": "app.env.j2", "dest": "app.env"}],
                "vars": {"greeting": "hi {instance}"},
            }
        )
    )


def test_instances_are_isolated_and_destroyed_on_request(local_project):
    p = local_project
    setup_review(p)
    for name in ("pr-42", "pr-43"):
        result = p.invoke("deploy", "--stage=review", f"--instance={name}")
        assert result.returncode == 0, result.stderr
    assert "GREETING=hi pr-42" in (p.root / "review-pr-42" / "current" / "app.env").read_text()
    assert "GREETING=hi pr-43" in (p.root / "review-pr-43" / "current" / "app.env").read_text()
    unconfirmed = p.invoke("destroy", "--stage=review", "--instance=pr-42")
    assert unconfirmed.returncode == 2 and "add --yes" in unconfirmed.stderr
    assert (p.root / "review-pr-42").exists()
    done = p.invoke("destroy", "--stage=review", "--instance=pr-42", "--yes")
    assert done.returncode == 0, done.stderr
    assert not (p.root / "review-pr-42").exists() and (p.root / "review-pr-43" / "current").exists()


def test_instance_rules(local_project):
    p = local_project
    setup_review(p)
    missing = p.invoke("deploy", "--stage=review")
    assert missing.returncode == 2 and "stage review is a template" in missing.stderr
    bad = p.invoke("deploy", "--stage=review", "--instance=../../etc")
    assert bad.returncode == 2 and "is not a valid instance name" in bad.stderr
    not_template = p.invoke("deploy", "--stage=test", "--instance=x")
    assert not_template.returncode == 2 and "stage test is not a template stage" in not_template.stderr
    p.deploy()
    refused = p.invoke("destroy", "--stage=test", "--yes")
    assert refused.returncode == 2 and "not a template stage" in refused.stderr
    assert (p.root / "deployed" / "current").exists()
