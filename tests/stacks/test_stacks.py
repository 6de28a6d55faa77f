"""Runs as first-class stacks (issue 12): one shared stack, identical whatever the run id, and one stack per run
holding only that run's resources; the watchdog's alarm; cdk-nag's acknowledgements, fewer than before."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.stacks.helpers import CONTEXT, AppSynth, Synth, as_list, import_of, synth
from training.cloud.core import outputs as keys
from training.errors import ConfigError

# What a run stack may hold: its group and what the group needs, its log group, its watchdog and alarm.
RUN_RESOURCE_TYPES = {"AWS::Logs::LogGroup", "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::InstanceProfile",
                      "AWS::EC2::LaunchTemplate", "AWS::AutoScaling::AutoScalingGroup", "AWS::Lambda::Function",
                      "AWS::Events::Rule", "AWS::Lambda::Permission", "AWS::CloudWatch::Alarm"}
# The acknowledged cdk-nag findings of the default app were 10 before issue 12 (11 with a dataUri).
ACKNOWLEDGEMENTS_BEFORE = 10


@pytest.fixture(scope="module")
def second_run(tmp_path_factory: pytest.TempPathFactory) -> AppSynth:
    """The same settings as the default synth, for another run id."""
    return synth(tmp_path_factory.mktemp("cdk-second-run"), {**CONTEXT, "runId": "exp-8"})


def without_run_id(s: Synth, run_id: str) -> str:
    """The run stack's template with its run id taken out (and the one logical id CDK hashes from the stack name)."""
    text = json.dumps(s.template, sort_keys=True).replace(run_id, "<run>").replace(run_id.replace("-", ""), "<run>")
    return re.sub(r"(AllowEventRule\w*?<run>WatchdogFunction)[0-9A-F]{16}", r"\1", text)


def test_two_run_ids_give_one_identical_shared_stack(default_synth: AppSynth, second_run: AppSynth) -> None:
    assert default_synth.shared.stack_name == second_run.shared.stack_name == "Spotgrade"
    assert default_synth.shared.template == second_run.shared.template
    assert "exp-7" not in json.dumps(default_synth.shared.template)


def test_two_run_ids_give_two_run_stacks_that_differ_only_in_the_run_id(default_synth: AppSynth,
                                                                        second_run: AppSynth) -> None:
    assert (default_synth.run.stack_name, second_run.run.stack_name) == ("Spotgrade-exp-7", "Spotgrade-exp-8")
    assert without_run_id(default_synth.run, "exp-7") == without_run_id(second_run.run, "exp-8")
    assert "exp-8" not in json.dumps(default_synth.run.template)


def test_a_run_stack_holds_only_per_run_resources(run_synth: Synth) -> None:
    types = {r["Type"] for r in run_synth.template["Resources"].values()}
    assert types == RUN_RESOURCE_TYPES
    # Each explicitly named resource carries the run id, so no two runs' resources can collide.
    named = {"AWS::AutoScaling::AutoScalingGroup": "AutoScalingGroupName", "AWS::Logs::LogGroup": "LogGroupName",
             "AWS::CloudWatch::Alarm": "AlarmName"}
    for cfn_type, name in named.items():
        names = [r["Properties"].get(name) for r in run_synth.resources(cfn_type).values()]
        assert any(names) and all(n is None or "exp-7" in n for n in names), names


def test_the_shared_stack_holds_no_run_resource(shared_synth: Synth) -> None:
    types = {r["Type"] for r in shared_synth.template["Resources"].values()}
    assert not types & {"AWS::AutoScaling::AutoScalingGroup", "AWS::EC2::LaunchTemplate", "AWS::CloudWatch::Alarm",
                        "AWS::Events::Rule"}
    assert {"AWS::EC2::VPC", "AWS::S3::Bucket", "AWS::SNS::Topic", "AWS::KMS::Key"} <= types
    assert "spotgrade:run-id" not in json.dumps(shared_synth.template)


def test_the_run_stack_imports_the_shared_stacks_exports_only(default_synth: AppSynth) -> None:
    exported = {o["Export"]["Name"] for o in default_synth.shared.template["Outputs"].values()}
    imported = set(re.findall(r'"Fn::ImportValue": "([^"]+)"', json.dumps(default_synth.run.template)))
    assert exported == {f"Spotgrade:{key}" for key in keys.SHARED_EXPORTS}
    assert imported == exported - {f"Spotgrade:{keys.VPC_ID}"}  # the group needs the subnets, not the VPC's id
    assert "Ref" not in json.dumps(default_synth.shared.template["Outputs"][keys.BUCKET_NAME]["Export"])


def test_the_run_stack_is_deployed_after_the_shared_one(default_synth: AppSynth) -> None:
    manifest = json.loads((default_synth.outdir / "manifest.json").read_text())["artifacts"]
    assert "Spotgrade" in manifest["Spotgrade-exp-7"]["dependencies"]
    assert "Spotgrade-exp-7" not in manifest["Spotgrade"].get("dependencies", [])


def test_destroying_a_run_stack_keeps_its_log_group(run_synth: Synth) -> None:
    [run_logs] = [r for r in run_synth.resources("AWS::Logs::LogGroup").values()
                  if r["Properties"].get("LogGroupName") == keys.log_group_name("Spotgrade", "exp-7")]
    assert run_logs["DeletionPolicy"] == run_logs["UpdateReplacePolicy"] == "Retain"


def test_names_agree_with_the_settings() -> None:
    """core/outputs.py names the run's stack and log group for run control; the settings name them for the stack."""
    from tests.stacks.helpers import run_config

    config = run_config()
    assert keys.log_group_name(config.stack_name, config.run_id) == config.log_group_name
    assert keys.run_stack_name(config.stack_name, config.run_id) == config.asg_name == "Spotgrade-exp-7"
    assert keys.run_id_of_stack("Spotgrade", "Spotgrade-exp-7") == "exp-7"
    assert keys.run_id_of_stack("Spotgrade", "Other-exp-7") is None


@pytest.mark.parametrize("run_id", ["exp_7", "exp.7", "x" * 63])
def test_a_run_id_that_names_no_stack_stops_synth_with_one_line(run_id: str) -> None:
    from stacks.spotgrade_stack import build_app

    with pytest.raises(ConfigError, match="context key 'runId'") as info:
        build_app({**CONTEXT, "runId": run_id, "stackName": "S" * 70}, repo_dir=None, nag=False,
                  resolve=None)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- the watchdog's alarm

def test_an_alarm_on_the_watchdogs_errors_and_throttles_notifies_the_topic(run_synth: Synth) -> None:
    [function_id] = [k for k, v in run_synth.resources("AWS::Lambda::Function").items()]
    alarm = run_synth.one("AWS::CloudWatch::Alarm")
    assert alarm["AlarmName"] == "Spotgrade-exp-7-watchdog-failing"
    assert alarm["AlarmActions"] == [import_of(keys.TOPIC_ARN)]
    assert (alarm["Threshold"], alarm["ComparisonOperator"], alarm["EvaluationPeriods"]) == (
        1, "GreaterThanOrEqualToThreshold", 1)
    assert alarm["TreatMissingData"] == "notBreaching"
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    [expression] = [m for m in metrics.values() if "Expression" in m]
    assert expression["Expression"] == "errors + throttles" and expression["ReturnData"] is True
    for metric_id, name in (("errors", "Errors"), ("throttles", "Throttles")):
        stat = metrics[metric_id]["MetricStat"]
        assert (stat["Metric"]["Namespace"], stat["Metric"]["MetricName"], stat["Stat"]) == ("AWS/Lambda", name, "Sum")
        assert stat["Metric"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
        assert stat["Period"] == 300  # the watchdog's schedule


def test_cloudwatch_may_publish_for_this_apps_alarms_only(shared_synth: Synth) -> None:
    topic_id = next(iter(shared_synth.resources("AWS::SNS::Topic")))
    alarms = "arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:Spotgrade-*"
    statements = shared_synth.one("AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    [publish] = [st for st in statements if st.get("Sid") == "RunAlarms"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert (publish["Action"], publish["Resource"]) == ("sns:Publish", {"Ref": topic_id})
    key_statements = shared_synth.one("AWS::KMS::Key")["KeyPolicy"]["Statement"]
    [use_key] = [st for st in key_statements if st.get("Sid") == "RunAlarms"]
    assert use_key["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(use_key["Action"]) == {"kms:GenerateDataKey*", "kms:Decrypt"}
    for statement in (publish, use_key):
        from tests.stacks.helpers import flatten

        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
        assert flatten(statement["Condition"]["ArnLike"]["aws:SourceArn"]) == alarms


# ---------------------------------------------------------------- cdk-nag acknowledgements

def acknowledged(s: Synth) -> list[tuple[str, str]]:
    """Every acknowledged cdk-nag finding of the stack (one per construct that acknowledges it), with its reason."""
    metadata = json.loads((s.outdir / f"{s.stack_name}.metadata.json").read_text())
    return [(rule, reason) for entries in metadata.values() for entry in entries
            if entry["type"] == "aws:cdk:acknowledged-rules"
            for rule, reason in entry["data"].items() if "AwsSolutions-" in rule]


def test_fewer_acknowledgements_than_before(tmp_path: Path) -> None:
    context = {k: v for k, v in CONTEXT.items() if k != "dataUri"}  # as counted before: no data grant
    app = synth(tmp_path, context)
    assert acknowledged(app.shared) == []
    found = [rule for rule, _ in acknowledged(app.run)]
    assert len(found) < ACKNOWLEDGEMENTS_BEFORE, found
    assert len(found) == 7, found  # instance role 4 (IAM5), the group 1 (EC26), the watchdog's role 2 (IAM5)
    assert not [rule for rule in found if "IAM4" in rule or "Action::" in rule]  # no managed policy, no * action


def test_every_statement_action_is_named_exactly(run_synth: Synth) -> None:
    """No wildcard action anywhere in the run's roles (kms:GenerateDataKey, not kms:GenerateDataKey*)."""
    from tests.stacks.helpers import identity_statements

    actions = {a for st in identity_statements(run_synth) for a in as_list(st["Action"])}
    assert not [a for a in actions if "*" in a]
    assert {"kms:GenerateDataKey", "kms:Decrypt", "sns:Publish"} <= actions
