"""deploy/systemd/pyexecd.service, statically: the settings the v2-native lane of tests/vm
shows to matter (tests/vm/jobs/lib-unit.sh runs the unit and a control without them), the
binary where the Dockerfile installs it, and the line that lane rewrites."""

import configparser
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "pyexecd.service"


def unit():
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       comment_prefixes=("#", ";"))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def test_unit_delegates_and_survives_oom_kills():
    service = unit()["Service"]
    assert service["Delegate"] == "yes"
    assert service["OOMPolicy"] == "continue"


def test_unit_runs_the_binary_where_the_image_has_it():
    exec_start = unit()["Service"]["ExecStart"].split()[0]
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    assert re.search(rf"^COPY --from=build \S+ {re.escape(exec_start)}$", dockerfile, re.M)


def test_unit_has_the_port_line_the_vm_lane_rewrites():
    assert re.search(r"^Environment=PORT=8080$", UNIT.read_text(), re.M)
    assert "Environment=PORT=8080" in (REPO / "tests" / "vm" / "jobs" / "lib-unit.sh").read_text()


def test_readme_points_at_the_unit():
    assert "deploy/systemd/pyexecd.service" in (REPO / "README.md").read_text()
