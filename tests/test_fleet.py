"""What both EC2 fleets share (modules/scaling_patterns/core/fleet.py): launch template changes reach running instances."""

from __future__ import annotations

import pytest

from app.config import load_config
from scaling_patterns.core.settings import SettingsError

FLEETS = ("queue-depth-scaling", "inference-load-balancing")


@pytest.mark.parametrize("stack, protected", [("queue-depth-scaling", "Wait"), ("inference-load-balancing", "Ignore")])
def test_an_instance_refresh_replaces_running_instances_new_ones_first(synth, stack, protected):
    group = synth.stack(stack).one("aws_autoscaling_group")
    preferences = group["instance_refresh"]["preferences"]
    assert group["instance_refresh"]["strategy"] == "Rolling"
    assert (preferences["min_healthy_percentage"], preferences["max_healthy_percentage"]) == (100, 200)
    assert preferences["skip_matching"] is True and preferences["auto_rollback"] is True
    # Busy queue workers are scale-in protected: the refresh waits for them instead of killing a job.
    assert preferences["scale_in_protected_instances"] == protected


def test_the_group_follows_the_latest_launch_template_version(synth):
    for stack in FLEETS:
        s = synth.stack(stack)
        assert s.one("aws_autoscaling_group")["launch_template"]["version"] == s.ref("aws_launch_template", "latest_version")
        assert s.one("aws_launch_template")["update_default_version"] is True


def test_the_emulator_profile_leaves_the_refresh_out(emulator_synth):
    for stack in FLEETS:
        assert "instance_refresh" not in emulator_synth.stack(stack).one("aws_autoscaling_group")


def problems(stack: str, refresh: dict) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_config(data={stack: {"fleet": {"instance_refresh": refresh}}})
    return caught.value.problems


def test_refresh_percentages_follow_aws_rules():
    assert problems("queue-depth-scaling", {"min_healthy_percentage": 50, "max_healthy_percentage": 200}) == [
        "settings.toml: [queue-depth-scaling] fleet.instance_refresh: max_healthy_percentage may exceed "
        "min_healthy_percentage by at most 100 (given min_healthy_percentage=50, max_healthy_percentage=200)"]
    assert problems("inference-load-balancing", {"max_healthy_percentage": 100}) == [
        "settings.toml: [inference-load-balancing] fleet.instance_refresh: min_healthy_percentage and "
        "max_healthy_percentage cannot both be 100: the refresh could neither stop nor add an instance "
        "(given min_healthy_percentage=100, max_healthy_percentage=100)"]
    assert problems("queue-depth-scaling", {"max_healthy_percentage": 250})[0].endswith(
        "fleet.instance_refresh.max_healthy_percentage: Input should be less than or equal to 200 (given 250)")


def test_a_refresh_can_be_turned_off(tmp_path):
    config = load_config(data={"queue-depth-scaling": {"fleet": {"instance_refresh": {"enabled": False}}}})
    assert config.stacks["queue-depth-scaling"].fleet.instance_refresh.enabled is False
