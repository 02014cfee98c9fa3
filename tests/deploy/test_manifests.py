"""Static checks of everything under deploy/ (no cluster, no Docker engine, no network).

    /usr/bin/python3 -m pytest tests/deploy

Needs Debian's python3-yaml and python3-pytest. Optional, used when installed (with
PYEXECD_MUST_WORK=1 their absence is a failure, not a skip): python3-kubernetes (strict
schema check of the Kubernetes manifests against the API's models: unknown fields, wrong
types, missing required fields), yamllint and shellcheck. (hadolint is not packaged by
Debian; the Dockerfile checks below are done in Python.)

Every check is a function of a deploy/ tree, so that `test_each_check_can_fail` can run it
on a temporary copy with one thing broken and see it fail.
"""

import copy
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
MUST_WORK = os.environ.get("PYEXECD_MUST_WORK") == "1"

# What the service really serves (src/http/server.c); probe paths must be among them.
SERVED_PATHS = ("/health", "/ready")
# The Dockerfile's runtime stage must install these Debian packages.
RUNTIME_PACKAGES = {
    "python3", "python3-numpy", "python3-pandas", "python3-matplotlib",
    "libjansson4", "libseccomp2", "libpython3.13",
}
# Never in the final image.
FORBIDDEN_RUNTIME = re.compile(
    r"^(gcc(-\d+)?|g\+\+(-\d+)?|cpp(-\d+)?|clang.*|make|build-essential|meson|ninja-build|"
    r"pkg-config|pkgconf|python3-pip|pip|python3-venv|curl|wget|.*-dev)$")
# Memory a pod needs beyond concurrency x PYEXECD_MEMORY_MB: zygote(s), service, warm pool.
OVERHEAD_MIB = 400
# Seconds Cloud Run's request timeout must exceed PYEXECD_TIMEOUT by (set-up, queue, reply).
TIMEOUT_MARGIN = 5


def skip_or_fail(reason):
    if MUST_WORK:
        pytest.fail(f"PYEXECD_MUST_WORK=1 but: {reason}")
    pytest.skip(reason)


# --- loading --------------------------------------------------------------------------

class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML keeps the last silently;
    a duplicated `env` or `annotations` would hide half of a manifest)."""


def _no_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def yaml_files(root):
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=StrictLoader) if d is not None]


def load_one(path):
    docs = load_all(path)
    assert len(docs) == 1, f"{path}: expected one YAML document, found {len(docs)}"
    return docs[0]


def k8s_objects(root):
    """{kind: object} of deploy/k8s (one object per kind)."""
    objs = {}
    for path in yaml_files(root / "k8s"):
        for doc in load_all(path):
            assert doc.get("kind") not in objs, f"two objects of kind {doc.get('kind')}"
            objs[doc.get("kind")] = doc
    return objs


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def mebibytes(quantity):
    m = re.fullmatch(r"(\d+)(Mi|Gi)", str(quantity))
    assert m, f"memory quantity {quantity!r}: use Mi or Gi"
    return int(m.group(1)) * (1024 if m.group(2) == "Gi" else 1)


def cpus(quantity):
    q = str(quantity)
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


def shutdown_grace_seconds():
    """pyexecd's drain period after SIGTERM, from the source, so the manifests follow it."""
    text = (REPO / "src" / "main.c").read_text()
    m = re.search(r"#define\s+SHUTDOWN_GRACE_MS\s+(\d+)", text)
    assert m, "SHUTDOWN_GRACE_MS not found in src/main.c"
    return int(m.group(1)) / 1000


def served_paths():
    text = (REPO / "src" / "http" / "server.c").read_text()
    return {p for p in SERVED_PATHS if f'"{p}"' in text}


# --- Dockerfile parsing ---------------------------------------------------------------

def dockerfile_instructions(path):
    """[(stage_index, INSTRUCTION, arguments)] with continuations joined, comments dropped."""
    logical, buf = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if buf and line.startswith("#"):
            continue  # comment lines inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    assert not buf, "Dockerfile ends inside a continued line"
    out, stage = [], -1
    for line in logical:
        instr, _, args = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            stage += 1
        out.append((stage, instr, args.strip()))
    return out


def stage_of(instrs, index):
    return [(i, a) for s, i, a in instrs if s == index]


def apt_installs(run_args):
    """Package names of every `apt-get install` in a RUN line."""
    pkgs = []
    for cmd in re.split(r";|&&|\|\|", run_args):
        words = shlex.split(cmd)
        if "apt-get" in words and "install" in words:
            after = words[words.index("install") + 1:]
            pkgs += [w for w in after if not w.startswith("-")]
    return pkgs


# --- .dockerignore --------------------------------------------------------------------

def dockerignore_excludes(rules, relpath):
    """Docker's semantics, simplified: patterns are anchored at the context root, `**`
    spans directories, a rule matching a parent directory excludes what is inside, the
    last matching rule wins, `!` re-includes."""
    def to_regex(pat):
        out, i = "", 0
        while i < len(pat):
            if pat.startswith("**/", i):
                out += "(?:.*/)?"
                i += 3
            elif pat.startswith("**", i):
                out += ".*"
                i += 2
            elif pat[i] == "*":
                out += "[^/]*"
                i += 1
            elif pat[i] == "?":
                out += "[^/]"
                i += 1
            else:
                out += re.escape(pat[i])
                i += 1
        return re.compile(out + "$")

    parts = relpath.split("/")
    candidates = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for rule in rules:
        negate = rule.startswith("!")
        pat = rule[1:] if negate else rule
        pat = pat.strip("/")
        rx = to_regex(pat)
        if any(rx.match(c) for c in candidates):
            excluded = not negate
    return excluded


def dockerignore_rules(path):
    return [l.strip() for l in path.read_text().splitlines()
            if l.strip() and not l.strip().startswith("#")]


# ======================================================================================
# Checks. Each takes the root of a deploy/ tree (and, for .dockerignore, the repo root).
# ======================================================================================

def check_yaml_parses(root):
    files = yaml_files(root)
    assert files, "no YAML under deploy/"
    for path in files:
        docs = load_all(path)
        assert docs, f"{path}: empty"
        for doc in docs:
            assert isinstance(doc, dict), f"{path}: a document is not a mapping"


def check_k8s_kinds(root):
    objs = k8s_objects(root)
    expected = {
        "Namespace": "v1",
        "Deployment": "apps/v1",
        "Service": "v1",
        "HorizontalPodAutoscaler": "autoscaling/v2",
        "PodDisruptionBudget": "policy/v1",
        "NetworkPolicy": "networking.k8s.io/v1",
        "Kustomization": "kustomize.config.k8s.io/v1beta1",
    }
    assert set(objs) == set(expected), f"kinds in deploy/k8s: {sorted(objs, key=str)}"
    for kind, api in expected.items():
        assert objs[kind]["apiVersion"] == api, f"{kind}: apiVersion {objs[kind]['apiVersion']}"
        if kind != "Kustomization":
            assert objs[kind].get("metadata", {}).get("name"), f"{kind} has no metadata.name"


def check_k8s_probes(root):
    dep = k8s_objects(root)["Deployment"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    served = served_paths()
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    port_names = {p.get("name") for p in c["ports"]} | {p["containerPort"] for p in c["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        if probe in c:
            get = c[probe]["httpGet"]
            assert get["path"] in served, f"{probe} path {get['path']} is not served by pyexecd"
            assert get["port"] in port_names, f"{probe} port {get['port']} is not a container port"


def check_k8s_shutdown(root):
    """terminationGracePeriodSeconds > preStop sleep + pyexecd's drain (+ margin)."""
    spec = k8s_objects(root)["Deployment"]["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    cmd = c["lifecycle"]["preStop"]["exec"]["command"]
    assert cmd[0] in ("sleep", "/bin/sleep", "/usr/bin/sleep") and len(cmd) == 2, cmd
    pre_stop = float(cmd[1])
    grace = spec["terminationGracePeriodSeconds"]
    assert grace >= 15, f"terminationGracePeriodSeconds {grace} < 15"
    assert grace > pre_stop + shutdown_grace_seconds(), (
        f"terminationGracePeriodSeconds {grace} <= preStop {pre_stop} + drain "
        f"{shutdown_grace_seconds()}")


def check_k8s_selectors(root):
    objs = k8s_objects(root)
    dep = objs["Deployment"]
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]

    def matches(selector, what):
        assert selector, f"{what}: empty selector (would select every pod)"
        for k, v in selector.items():
            assert pod_labels.get(k) == v, f"{what} selects {k}={v}, pods have {pod_labels}"

    matches(dep["spec"]["selector"]["matchLabels"], "Deployment")
    matches(objs["Service"]["spec"]["selector"], "Service")
    matches(objs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"], "PodDisruptionBudget")
    matches(objs["NetworkPolicy"]["spec"]["podSelector"]["matchLabels"], "NetworkPolicy")

    ports = {p.get("name"): p["containerPort"] for p in c["ports"]}
    for sp in objs["Service"]["spec"]["ports"]:
        target = sp.get("targetPort", sp["port"])
        assert target in ports or target in ports.values(), f"Service targetPort {target}"
    allowed = [p["port"] for rule in objs["NetworkPolicy"]["spec"]["ingress"]
               for p in rule.get("ports", [])]
    assert set(allowed) <= set(ports.values()) | set(ports), f"NetworkPolicy ports {allowed}"


def check_k8s_hpa_pdb(root):
    objs = k8s_objects(root)
    dep, hpa, pdb = objs["Deployment"], objs["HorizontalPodAutoscaler"], objs["PodDisruptionBudget"]
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == (
        "apps/v1", "Deployment", dep["metadata"]["name"]), f"HPA targets {ref}"
    lo, hi = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
    assert 1 <= lo <= hi, f"HPA replicas {lo}..{hi}"
    metrics = [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert metrics == ["cpu"], f"HPA metrics {metrics}"
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert "cpu" in c["resources"].get("requests", {}), "CPU utilisation needs a CPU request"
    # A PDB that allows no disruption at the HPA's minimum blocks every node drain.
    assert "minAvailable" in pdb["spec"] or "maxUnavailable" in pdb["spec"]
    if "minAvailable" in pdb["spec"]:
        assert int(pdb["spec"]["minAvailable"]) < lo, (
            f"PDB minAvailable {pdb['spec']['minAvailable']} >= HPA minReplicas {lo}")


def check_k8s_container(root):
    """Sizing rule, port, privilege."""
    dep = k8s_objects(root)["Deployment"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    env = env_of(c)
    limits, requests = c["resources"]["limits"], c["resources"]["requests"]
    conc, pool = int(env["PYEXECD_CONCURRENCY"]), int(env["PYEXECD_POOL_SIZE"])
    assert cpus(limits["cpu"]) == conc == pool, (
        f"cpu limit {limits['cpu']}, PYEXECD_CONCURRENCY {conc}, PYEXECD_POOL_SIZE {pool}")
    assert cpus(requests["cpu"]) <= cpus(limits["cpu"])
    assert mebibytes(requests["memory"]) <= mebibytes(limits["memory"])
    need = conc * int(env["PYEXECD_MEMORY_MB"]) + OVERHEAD_MIB
    assert mebibytes(limits["memory"]) >= need, f"memory limit {limits['memory']} < {need}Mi"
    (port,) = c["ports"]
    assert env.get("PORT", "8080") == str(port["containerPort"]) == "8080"
    sc = c["securityContext"]
    assert sc.get("privileged") is True, "the sandbox needs a privileged container"
    assert sc.get("runAsUser", 0) == 0 and sc.get("runAsNonRoot") is not True


def check_kustomization(root):
    objs = k8s_objects(root)
    kust = objs["Kustomization"]
    listed = set(kust["resources"])
    files = {p.name for p in yaml_files(root / "k8s")} - {"kustomization.yaml"}
    assert listed == files, f"kustomization resources {sorted(listed)} != files {sorted(files)}"
    assert kust["namespace"] == objs["Namespace"]["metadata"]["name"]
    (c,) = objs["Deployment"]["spec"]["template"]["spec"]["containers"]
    image_name = c["image"].rsplit(":", 1)[0]
    assert image_name in {i["name"] for i in kust.get("images", [])}, (
        f"kustomization images do not set the Deployment's image {image_name}")


def check_k8s_namespace(root):
    ns = k8s_objects(root)["Namespace"]
    # Pod Security Admission rejects privileged pods unless the namespace allows them.
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def cloudrun(root):
    svc = load_one(root / "cloudrun" / "service.yaml")
    tmpl = svc["spec"]["template"]
    (c,) = tmpl["spec"]["containers"]
    return svc, tmpl, c


def check_cloudrun_service(root):
    svc, tmpl, c = cloudrun(root)
    assert svc["apiVersion"] == "serving.knative.dev/v1" and svc["kind"] == "Service"
    assert svc["metadata"]["name"]
    ann = tmpl["metadata"]["annotations"]
    assert ann.get("run.googleapis.com/execution-environment") == "gen2", (
        "gen1 is gVisor: pyexecd cannot sandbox there")
    assert ann.get("run.googleapis.com/cpu-throttling") == "false"
    lo, hi = ann["autoscaling.knative.dev/minScale"], ann["autoscaling.knative.dev/maxScale"]
    assert isinstance(lo, str) and isinstance(hi, str), "annotation values must be strings"
    assert 0 <= int(lo) <= int(hi) and int(hi) >= 1
    for a in (ann, svc["metadata"].get("annotations", {})):
        for k, v in a.items():
            assert isinstance(v, str), f"annotation {k}: {v!r} is not a string"
    assert c["image"] == "IMAGE", "image placeholder (deploy.sh substitutes it)"


def check_cloudrun_sizing(root):
    _, tmpl, c = cloudrun(root)
    env = env_of(c)
    conc, pool = int(env["PYEXECD_CONCURRENCY"]), int(env["PYEXECD_POOL_SIZE"])
    cc = tmpl["spec"]["containerConcurrency"]
    limits = c["resources"]["limits"]
    assert cc == pool == conc == cpus(limits["cpu"]), (
        f"containerConcurrency {cc}, POOL_SIZE {pool}, CONCURRENCY {conc}, cpu {limits['cpu']}")
    assert cpus(limits["cpu"]) == 2 and mebibytes(limits["memory"]) == 2048
    need = conc * int(env["PYEXECD_MEMORY_MB"]) + OVERHEAD_MIB
    assert mebibytes(limits["memory"]) >= need


def check_cloudrun_timeout(root):
    _, tmpl, c = cloudrun(root)
    script_timeout = float(env_of(c).get("PYEXECD_TIMEOUT", "10"))
    t = tmpl["spec"]["timeoutSeconds"]
    assert script_timeout + TIMEOUT_MARGIN < t <= 3600, (
        f"timeoutSeconds {t} vs PYEXECD_TIMEOUT {script_timeout}")


def check_cloudrun_probes_port(root):
    _, _, c = cloudrun(root)
    served = served_paths()
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["startupProbe"]["httpGet"]["path"] in served
    (port,) = c["ports"]
    assert port["containerPort"] == 8080 and port.get("name", "http1") in ("http1", "h2c")
    for probe in ("startupProbe", "livenessProbe"):
        get = c[probe]["httpGet"]
        assert get["path"] in served, f"{probe} path {get['path']} is not served by pyexecd"
        assert get.get("port", 8080) == port["containerPort"]
    assert "PORT" not in env_of(c), "PORT is reserved on Cloud Run (it sets it from the port)"


def check_cloudbuild(root):
    cb = load_one(root / "cloudrun" / "cloudbuild.yaml")
    (step,) = cb["steps"]
    args = step["args"]
    assert args[0] == "build" and "--file=deploy/Dockerfile" in args and args[-1] == "."
    assert "--tag=${_IMAGE}" in args and cb["images"] == ["${_IMAGE}"]


def dockerfile(root):
    return dockerfile_instructions(root / "Dockerfile")


def check_dockerfile_stages(root):
    instrs = dockerfile(root)
    froms = [a for _, i, a in instrs if i == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    for f in froms:
        assert f.split()[0] == "debian:trixie-slim", f"FROM {f}"
    assert froms[0].split()[-2:] == ["AS", "build"] or froms[0].split()[-2:] == ["as", "build"]
    build = " ".join(a for i, a in stage_of(instrs, 0) if i == "RUN")
    assert "meson setup" in build and "--buildtype=release" in build
    assert "-Dtests=disabled" in build and "ninja" in build
    # meson compiles the playground's editor in from Debian's libjs-codemirror
    # (src/http/meson.build, option codemirror_dir).
    build_pkgs = [p for i, a in stage_of(instrs, 0) if i == "RUN" for p in apt_installs(a)]
    assert "libjs-codemirror" in build_pkgs, build_pkgs


def check_dockerfile_runtime(root):
    instrs = dockerfile(root)
    last = max(s for s, _, _ in instrs)
    final = stage_of(instrs, last)
    pkgs = []
    for i, a in final:
        if i == "RUN":
            pkgs += apt_installs(a)
            assert "pip install" not in a and "pip3 install" not in a, "no pip in the image"
    assert RUNTIME_PACKAGES <= set(pkgs), f"missing: {RUNTIME_PACKAGES - set(pkgs)}"
    bad = [p for p in pkgs if FORBIDDEN_RUNTIME.match(p)]
    assert not bad, f"build tools in the runtime stage: {bad}"
    copies = [a for i, a in final if i == "COPY"]
    assert any(a.startswith("--from=build") and a.endswith("/usr/local/bin/pyexecd")
               for a in copies), copies
    assert ("ENTRYPOINT", '["/usr/local/bin/pyexecd"]') in final
    users = [a for i, a in final if i == "USER"]
    assert users in ([], ["root"]), "pyexecd must run as root (it drops each sandbox itself)"


def check_dockerfile_apt_hygiene(root):
    for _, i, a in dockerfile(root):
        if i == "RUN" and "apt-get install" in a:
            assert "--no-install-recommends" in a, f"apt-get install without --no-install-recommends: {a[:80]}"
            assert "rm -rf /var/lib/apt/lists/*" in a, f"apt lists not removed in the same RUN: {a[:80]}"
            assert re.search(r"\bapt-get install (-\S+ )*-y\b", a), "apt-get install needs -y"
        if i == "ADD":
            assert "://" not in a, "ADD of a URL"


def check_dockerfile_operations(root):
    instrs = dockerfile(root)
    last = max(s for s, _, _ in instrs)
    final = stage_of(instrs, last)
    hc = [a for i, a in final if i == "HEALTHCHECK"]
    assert len(hc) == 1, "one HEALTHCHECK in the final stage"
    assert "/health" in hc[0] and "CMD" in hc[0]
    # The probe's program must be in the image: python3 is, curl and wget are not.
    cmd = hc[0].split("CMD", 1)[1].strip()
    prog = yaml.safe_load(cmd)[0] if cmd.startswith("[") else cmd.split()[0]
    assert prog in ("python3", "/usr/bin/python3"), f"HEALTHCHECK runs {prog}"
    assert ("STOPSIGNAL", "SIGTERM") in final
    assert ("EXPOSE", "8080") in final
    envs = " ".join(a for i, a in final if i == "ENV")
    assert re.search(r"\bPORT=8080\b", envs), "ENV PORT=8080"
    labels = " ".join(a for i, a in final if i == "LABEL")
    for key in ("title", "description", "version", "revision", "created", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels, f"OCI label {key}"


def check_dockerignore(root, repo):
    rules = dockerignore_rules(repo / ".dockerignore")
    for path in (".git", "build", "build/pyexecd", "build-asan/x.o",
                 "src/__pycache__/x.pyc", "tests/integration/__pycache__/a.pyc"):
        assert dockerignore_excludes(rules, path), f".dockerignore lets {path} in"
    # What meson needs to build must be in the context: src/, every meson.build, and every
    # file a meson.build names (e.g. '../../docs/openapi.json', '../../tools/embed.py').
    needed = {"meson.build", "meson_options.txt"}
    needed |= {str(p.relative_to(repo)) for p in (repo / "src").rglob("*") if p.is_file()
               and "__pycache__" not in p.parts}
    for mb in repo.rglob("meson.build"):
        rel = mb.relative_to(repo)
        if any(part.startswith("build") or part == ".git" for part in rel.parts[:-1]):
            continue
        needed.add(str(rel))
        for name in re.findall(r"'([^'\n]+)'", mb.read_text()):
            target = (mb.parent / name).resolve()
            if target.is_file() and repo.resolve() in target.parents:
                needed.add(str(target.relative_to(repo.resolve())))
    # ... and every file the Dockerfile COPYs from the context.
    df = repo / "deploy" / "Dockerfile"
    for _, instr, args in dockerfile_instructions(df) if df.exists() else []:
        if instr == "COPY" and not args.startswith("--from") and args.split()[0] != ".":
            needed.add(args.split()[0])
    for path in sorted(needed):
        assert not dockerignore_excludes(rules, path), f".dockerignore excludes {path}"


def check_scripts_strict(root):
    for script in (root / "cloudrun" / "deploy.sh", root / "verify-image.sh"):
        text = script.read_text()
        assert text.startswith("#!/usr/bin/env bash\n") or text.startswith("#!/bin/bash\n")
        assert "\nset -euo pipefail\n" in text, f"{script.name}: set -euo pipefail"
        assert os.access(script, os.X_OK), f"{script.name} is not executable"
        subprocess.run(["bash", "-n", str(script)], check=True)


CHECKS = [
    check_yaml_parses, check_k8s_kinds, check_k8s_probes, check_k8s_shutdown,
    check_k8s_selectors, check_k8s_hpa_pdb, check_k8s_container, check_kustomization,
    check_k8s_namespace, check_cloudrun_service, check_cloudrun_sizing,
    check_cloudrun_timeout, check_cloudrun_probes_port, check_cloudbuild,
    check_dockerfile_stages, check_dockerfile_runtime, check_dockerfile_apt_hygiene,
    check_dockerfile_operations, check_scripts_strict,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__[len("check_"):])
def test_deploy(check):
    check(DEPLOY)


def test_dockerignore():
    check_dockerignore(DEPLOY, REPO)


def test_probe_paths_are_served():
    assert served_paths() == set(SERVED_PATHS), "src/http/server.c no longer serves them"


# --- strict schema of the Kubernetes objects (python3-kubernetes models) --------------

def _schema_errors(value, type_name, where, client):
    """Unknown fields, wrong scalar types and missing required fields, checked against the
    models of Debian's python3-kubernetes (generated from the API's OpenAPI spec)."""
    errors = []
    if type_name.startswith("list["):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        for i, v in enumerate(value):
            errors += _schema_errors(v, type_name[5:-1], f"{where}[{i}]", client)
        return errors
    if type_name.startswith("dict("):
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping"]
        inner = type_name[5:-1].split(", ", 1)[1]
        for k, v in value.items():
            errors += _schema_errors(v, inner, f"{where}.{k}", client)
        return errors
    scalars = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float)}
    if type_name in scalars:
        ok = isinstance(value, scalars[type_name]) and not (
            type_name in ("int", "float") and isinstance(value, bool))
        return [] if ok else [f"{where}: {value!r} is not {type_name}"]
    if type_name in ("object", "datetime", "date"):
        return []
    cls = getattr(client, type_name)
    if not isinstance(value, dict):
        return [f"{where}: expected a {type_name} mapping"]
    by_json = {j: attr for attr, j in cls.attribute_map.items()}
    kwargs = {}
    for k, v in value.items():
        if k not in by_json:
            errors.append(f"{where}.{k}: unknown field of {type_name}")
            continue
        errors += _schema_errors(v, cls.openapi_types[by_json[k]], f"{where}.{k}", client)
        kwargs[by_json[k]] = None if isinstance(v, (dict, list)) else v
    if not errors:
        # The models' setters raise for missing required fields; nested values were
        # checked above, so placeholders suffice for them.
        for attr in cls.openapi_types:
            if attr in kwargs and kwargs[attr] is None:
                kwargs[attr] = {} if cls.openapi_types[attr].startswith("dict(") else (
                    [] if cls.openapi_types[attr].startswith("list[") else object())
        try:
            cls(**kwargs)
        except ValueError as e:
            errors.append(f"{where}: {e}")
    return errors


MODEL_OF = {
    ("v1", "Namespace"): "V1Namespace",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("v1", "Service"): "V1Service",
    # autoscaling/v2 is autoscaling/v2beta2 made GA, field for field. Debian 12's client
    # (22.x) predates the v2 models; Debian 13's (30.x) has only them.
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("V2HorizontalPodAutoscaler",
                                                    "V2beta2HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}


def check_k8s_schema(root, client):
    errors = []
    for kind, obj in k8s_objects(root).items():
        if kind == "Kustomization":
            continue
        model = MODEL_OF[(obj["apiVersion"], kind)]
        if isinstance(model, tuple):  # the first model this client has
            model = next((m for m in model if hasattr(client, m)), model[0])
        errors += _schema_errors(obj, model, kind, client)
    # Cloud Run's container and pod-level fields are a subset of Kubernetes' own.
    svc, tmpl, _ = cloudrun(root)
    errors += _schema_errors(svc["metadata"], "V1ObjectMeta", "cloudrun.metadata", client)
    errors += _schema_errors(tmpl["metadata"], "V1ObjectMeta", "cloudrun.template.metadata", client)
    spec = dict(tmpl["spec"])
    for k in ("containerConcurrency", "timeoutSeconds"):
        if not isinstance(spec.pop(k, 0), int):
            errors.append(f"cloudrun.template.spec.{k}: not an integer")
    errors += _schema_errors(spec, "V1PodSpec", "cloudrun.template.spec", client)
    assert not errors, "\n".join(errors)


def kubernetes_client():
    try:
        from kubernetes import client  # Debian: python3-kubernetes
    except ImportError:
        skip_or_fail("python3-kubernetes is not installed (strict manifest schema check)")
    return client


def test_k8s_schema():
    check_k8s_schema(DEPLOY, kubernetes_client())


# --- shell scripts ---------------------------------------------------------------------

def test_shellcheck():
    if not shutil.which("shellcheck"):
        skip_or_fail("shellcheck is not installed")
    repo = DEPLOY.parent
    scripts = [DEPLOY / "cloudrun" / "deploy.sh", DEPLOY / "verify-image.sh",
               repo / "scripts" / "install-deps", repo / "tests" / "vm" / "mkimage.sh",
               repo / "tests" / "vm" / "guest" / "vmjob",
               *sorted((repo / "tests" / "vm" / "jobs").glob("*.sh"))]
    # -x follows the jobs' `. ./lib-guest.sh`; -P finds it beside them.
    r = subprocess.run(["shellcheck", "--severity=style", "-x",
                        "-P", str(repo / "tests" / "vm" / "jobs"), *map(str, scripts)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_shellcheck_can_fail(tmp_path):
    if not shutil.which("shellcheck"):
        skip_or_fail("shellcheck is not installed")
    bad = tmp_path / "deploy.sh"
    bad.write_text((DEPLOY / "cloudrun" / "deploy.sh").read_text().replace(
        'gc run services replace "$manifest"', "gc run services replace $manifest"))
    r = subprocess.run(["shellcheck", "--severity=style", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "SC2086" in r.stdout, r.stdout


def test_yamllint():
    if not shutil.which("yamllint"):
        skip_or_fail("yamllint is not installed")
    r = subprocess.run(["yamllint", "-f", "parsable", "-c", str(DEPLOY / ".yamllint"), str(DEPLOY)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip(), r.stdout + r.stderr


def test_yamllint_can_fail(tmp_path):
    if not shutil.which("yamllint"):
        skip_or_fail("yamllint is not installed")
    root = tmp_path / "deploy"
    shutil.copytree(DEPLOY, root)
    path = root / "k8s" / "pdb.yaml"
    path.write_text(path.read_text().replace("  minAvailable: 1", "  minAvailable:   1 "))
    r = subprocess.run(["yamllint", "-f", "parsable", "-c", str(root / ".yamllint"), str(root)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "pdb.yaml" in r.stdout, r.stdout


def fake_gcloud(tmp_path, url="https://pyexecd-abc-ew.a.run.app"):
    """A stand-in `gcloud` that logs its arguments and keeps the manifest it is given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gcloud.log"
    script = bin_dir / "gcloud"
    script.write_text(f"""#!/bin/sh
echo "$*" >> {log}
case "$*" in
*"run services replace"*)
        for a in "$@"; do case "$a" in *.yaml) cp "$a" {tmp_path}/replaced.yaml ;; esac; done ;;
*"run services describe"*) echo {url} ;;
esac
exit 0
""")
    script.chmod(0o755)
    return bin_dir, log


def tools_dir(tmp_path):
    """A PATH directory with only the ordinary tools deploy.sh uses (no real gcloud, which
    may be installed on the machine)."""
    d = tmp_path / "tools"
    d.mkdir()
    for tool in ("dirname", "git", "sed", "grep", "mktemp", "rm", "date", "cat", "cp"):
        found = shutil.which(tool)
        if found:
            (d / tool).symlink_to(found)
    return d


def run_deploy(args, tmp_path, path_dirs, env_extra=None):
    env = {"PATH": ":".join(map(str, [*path_dirs, tools_dir(tmp_path)])),
           "TMPDIR": str(tmp_path), "TAG": "t1"}
    env.update(env_extra or {})
    return subprocess.run(["/bin/bash", str(DEPLOY / "cloudrun" / "deploy.sh"), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_deploy_sh_deploys_with_the_image(tmp_path):
    bin_dir, log = fake_gcloud(tmp_path)
    r = run_deploy(["my-project", "europe-west1", "exec-svc"], tmp_path, [bin_dir])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "https://pyexecd-abc-ew.a.run.app"
    calls = log.read_text()
    assert "builds submit" in calls and "_IMAGE=europe-west1-docker.pkg.dev/my-project/pyexecd/exec-svc:t1" in calls
    assert "run services replace" in calls and "--region europe-west1" in calls
    assert "allUsers" not in calls, "unauthenticated access only with ALLOW_UNAUTHENTICATED=1"
    svc = load_one(tmp_path / "replaced.yaml")
    assert svc["metadata"]["name"] == "exec-svc"
    (c,) = svc["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "europe-west1-docker.pkg.dev/my-project/pyexecd/exec-svc:t1"
    # Nothing else changed.
    orig = load_one(DEPLOY / "cloudrun" / "service.yaml")
    orig = copy.deepcopy(orig)
    orig["metadata"]["name"] = "exec-svc"
    orig["spec"]["template"]["spec"]["containers"][0]["image"] = c["image"]
    assert svc == orig


def test_deploy_sh_docker_builder_and_public_access(tmp_path):
    bin_dir, log = fake_gcloud(tmp_path)
    docker_log = tmp_path / "docker.log"
    (bin_dir / "docker").write_text(f'#!/bin/sh\necho "$*" >> {docker_log}\n')
    (bin_dir / "docker").chmod(0o755)
    r = run_deploy(["my-project", "us-central1"], tmp_path, [bin_dir],
                   {"BUILDER": "docker", "ALLOW_UNAUTHENTICATED": "1"})
    assert r.returncode == 0, r.stderr
    image = "us-central1-docker.pkg.dev/my-project/pyexecd/pyexecd:t1"
    calls = docker_log.read_text().splitlines()
    assert calls[0].startswith(f"build -f {DEPLOY}/Dockerfile") and f"-t {image}" in calls[0]
    assert calls[1] == f"push {image}"
    gcalls = log.read_text()
    assert "auth configure-docker us-central1-docker.pkg.dev" in gcalls
    assert "builds submit" not in gcalls
    assert "add-iam-policy-binding pyexecd" in gcalls and "--member allUsers" in gcalls


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "Usage"),
    (["p"], 2, "Usage"),
    (["my-project", "europe-west1", "svc", "extra"], 2, "Usage"),
    (["My_Project", "europe-west1"], 1, "not a project id"),
    (["my-project", "Europe West"], 1, "not a region"),
    (["my-project", "europe-west1", "Bad_Name"], 1, "not a Cloud Run service name"),
])
def test_deploy_sh_rejects_bad_arguments(tmp_path, args, code, message):
    bin_dir, log = fake_gcloud(tmp_path)
    r = run_deploy(args, tmp_path, [bin_dir])
    assert r.returncode == code and message in r.stderr, (r.returncode, r.stderr)
    assert not log.exists(), "gcloud must not be called with bad arguments"


def test_deploy_sh_needs_gcloud(tmp_path):
    r = run_deploy(["my-project", "europe-west1"], tmp_path, [])
    assert r.returncode == 1 and "gcloud is not installed" in r.stderr


def test_verify_image_reports_missing_tools(tmp_path):
    """No podman/buildah on PATH: exit 2 and say what to install."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    r = subprocess.run(["/bin/bash", str(DEPLOY / "verify-image.sh")], capture_output=True,
                       text=True, env={"PATH": str(bin_dir)}, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "missing: podman (or buildah)" in r.stderr or "missing: root" in r.stderr, r.stderr


# --- every check can fail ---------------------------------------------------------------

def _edit(rel, old, new):
    def apply(root):
        path = root / rel
        text = path.read_text()
        assert old in text, f"mutation target not found in {rel}: {old!r}"
        path.write_text(text.replace(old, new, 1))
    return apply


def _append(rel, text):
    def apply(root):
        with open(root / rel, "a", encoding="utf-8") as f:
            f.write(text)
    return apply


def _chmod(rel, mode):
    def apply(root):
        (root / rel).chmod(mode)
    return apply


# (check, mutation of a copy of deploy/): the check must fail on the mutated copy.
MUTATIONS = [
    (check_yaml_parses, _edit("k8s/pdb.yaml", "minAvailable: 1", "minAvailable: [1")),
    (check_yaml_parses, _edit("k8s/pdb.yaml", "  minAvailable: 1", "  minAvailable: 1\n  minAvailable: 2")),
    (check_k8s_kinds, _edit("k8s/pdb.yaml", "policy/v1", "policy/v1beta1")),
    (check_k8s_kinds, _edit("k8s/hpa.yaml", "kind: HorizontalPodAutoscaler", "kind: HPA")),
    (check_k8s_probes, _edit("k8s/deployment.yaml", "path: /ready", "path: /healthz")),
    (check_k8s_probes, _edit("k8s/deployment.yaml", "path: /health\n              port: http\n            periodSeconds: 10",
                             "path: /ready\n              port: http\n            periodSeconds: 10")),
    (check_k8s_probes, _edit("k8s/deployment.yaml", "port: http", "port: metrics")),
    (check_k8s_shutdown, _edit("k8s/deployment.yaml", "terminationGracePeriodSeconds: 20",
                               "terminationGracePeriodSeconds: 12")),
    (check_k8s_shutdown, _edit("k8s/deployment.yaml", 'command: ["sleep", "5"]', 'command: ["sleep", "15"]')),
    (check_k8s_selectors, _edit("k8s/service.yaml", "  selector:\n    app.kubernetes.io/name: pyexecd",
                                "  selector:\n    app.kubernetes.io/name: pyexec")),
    (check_k8s_selectors, _edit("k8s/pdb.yaml", "    matchLabels:\n      app.kubernetes.io/name: pyexecd",
                                "    matchLabels:\n      app.kubernetes.io/name: other")),
    (check_k8s_selectors, _edit("k8s/service.yaml", "targetPort: http", "targetPort: 9090")),
    (check_k8s_hpa_pdb, _edit("k8s/hpa.yaml", "    name: pyexecd", "    name: pyexecd-old")),
    (check_k8s_hpa_pdb, _edit("k8s/pdb.yaml", "minAvailable: 1", "minAvailable: 2")),
    (check_k8s_container, _edit("k8s/deployment.yaml", 'name: PYEXECD_POOL_SIZE\n              value: "2"',
                                'name: PYEXECD_POOL_SIZE\n              value: "4"')),
    (check_k8s_container, _edit("k8s/deployment.yaml", "privileged: true", "privileged: false")),
    (check_k8s_container, _edit("k8s/deployment.yaml", "memory: 2Gi\n          # Why", "memory: 512Mi\n          # Why")),
    (check_kustomization, _edit("k8s/kustomization.yaml", "  - pdb.yaml\n", "")),
    (check_k8s_namespace, _edit("k8s/namespace.yaml", "enforce: privileged", "enforce: baseline")),
    (check_cloudrun_service, _edit("cloudrun/service.yaml", "execution-environment: gen2",
                                   "execution-environment: gen1")),
    (check_cloudrun_service, _edit("cloudrun/service.yaml", 'maxScale: "10"', "maxScale: 10")),
    (check_cloudrun_service, _edit("cloudrun/service.yaml", 'cpu-throttling: "false"', 'cpu-throttling: "true"')),
    (check_cloudrun_sizing, _edit("cloudrun/service.yaml", "containerConcurrency: 2", "containerConcurrency: 80")),
    (check_cloudrun_timeout, _edit("cloudrun/service.yaml", "timeoutSeconds: 30", "timeoutSeconds: 10")),
    (check_cloudrun_probes_port, _edit("cloudrun/service.yaml", "path: /health", "path: /livez")),
    (check_cloudrun_probes_port, _edit("cloudrun/service.yaml", "containerPort: 8080", "containerPort: 9000")),
    (check_cloudbuild, _edit("cloudrun/cloudbuild.yaml", "--file=deploy/Dockerfile", "--file=Dockerfile")),
    (check_dockerfile_stages, _edit("Dockerfile", "FROM debian:trixie-slim AS runtime", "FROM debian:trixie AS runtime")),
    (check_dockerfile_stages, _edit("Dockerfile", "--buildtype=release -Dtests=disabled /tmp/build",
                                    "--buildtype=release /tmp/build")),
    (check_dockerfile_stages, _edit("Dockerfile", "        libjs-codemirror \\\n", "")),
    (check_dockerfile_runtime, _edit("Dockerfile", "        python3-pandas \\", "        python3-pandas \\\n        gcc \\")),
    (check_dockerfile_runtime, _edit("Dockerfile", "        libseccomp2; \\", "        libseccomp2; \\\n    pip install requests; \\")),
    (check_dockerfile_runtime, _edit("Dockerfile", "        libjansson4 \\\n", "")),
    (check_dockerfile_runtime, _edit("Dockerfile", "USER root", "USER nobody")),
    (check_dockerfile_apt_hygiene, _edit("Dockerfile", "    rm -rf /var/lib/apt/lists/* /var/cache/apt/*",
                                         "    rm -rf /var/cache/apt/*")),
    (check_dockerfile_apt_hygiene, _edit("Dockerfile", "apt-get install -y --no-install-recommends \\\n        python3 \\\n        python3-numpy",
                                         "apt-get install -y \\\n        python3 \\\n        python3-numpy")),
    (check_dockerfile_operations, _edit("Dockerfile", "STOPSIGNAL SIGTERM", "STOPSIGNAL SIGINT")),
    (check_dockerfile_operations, _edit("Dockerfile", 'CMD ["python3", "-I", "-c"', 'CMD ["curl", "-I", "-c"')),
    (check_dockerfile_operations, _edit("Dockerfile", "org.opencontainers.image.revision=", "org.example.revision=")),
    (check_scripts_strict, _edit("cloudrun/deploy.sh", "set -euo pipefail", "set -eu")),
    (check_scripts_strict, _chmod("verify-image.sh", 0o644)),
]


@pytest.mark.parametrize("check, mutate", MUTATIONS,
                         ids=[f"{c.__name__[len('check_'):]}-{i}" for i, (c, _) in enumerate(MUTATIONS)])
def test_each_check_can_fail(tmp_path, check, mutate):
    root = tmp_path / "deploy"
    shutil.copytree(DEPLOY, root)
    check(root)  # passes on the unmodified copy
    mutate(root)
    with pytest.raises((AssertionError, yaml.YAMLError, KeyError, subprocess.CalledProcessError)):
        check(root)


def test_schema_check_can_fail(tmp_path):
    client = kubernetes_client()
    root = tmp_path / "deploy"
    shutil.copytree(DEPLOY, root)
    for rel, old, new in [
        ("k8s/deployment.yaml", "readinessProbe:", "readynessProbe:"),          # unknown field
        ("k8s/deployment.yaml", "terminationGracePeriodSeconds: 20",
         'terminationGracePeriodSeconds: "20"'),                                 # wrong type
        ("k8s/service.yaml", "    - name: http\n      port: 80", "    - name: http"),  # required
        ("cloudrun/service.yaml", "timeoutSeconds: 1\n", "timeoutSecond: 1\n"),  # in Cloud Run's container
    ]:
        target = root / rel
        original = target.read_text()
        assert old in original, (rel, old)
        target.write_text(original.replace(old, new, 1))
        with pytest.raises(AssertionError):
            check_k8s_schema(root, client)
        target.write_text(original)
    check_k8s_schema(root, client)


def test_dockerignore_check_can_fail(tmp_path):
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    for rel in ("meson.build", "meson_options.txt", "tools/embed.py", "src/main.c"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("")
    good = (REPO / ".dockerignore").read_text()
    (repo / ".dockerignore").write_text(good)
    check_dockerignore(None, repo)
    (repo / "src" / "meson.build").write_text("x = files('../docs/api.json')\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "api.json").write_text("{}")
    check_dockerignore(None, repo)
    for bad in (good.replace("\n.git\n", "\n"), good + "\nsrc\n", good + "\n*.build\nmeson*\n",
                good + "\ndocs\n"):
        (repo / ".dockerignore").write_text(bad)
        with pytest.raises(AssertionError):
            check_dockerignore(None, repo)
