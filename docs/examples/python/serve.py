"""Serve the prompt version a request gets, through OpenFeature and flagd.

The runtime config is exported for flagd (`promptgate export --format flagd -o
flags.json`, or `--flagd flags.json` on every rollout command) and the prompts for
every version it names are bundled (`promptgate bundle -o bundle.json`). flagd's
in-process evaluator reads the flag file (and re-reads it when a rollout command
replaces it); the bundle gives the version's messages, model and parameters.

    python serve.py flags.json bundle.json support.assistant KEY [SEGMENT ...]
        prints the version and the messages a request of KEY in SEGMENTs is served
    python serve.py flags.json -
        reads requests as JSON lines ({"artifact": …, "key": …, "segments": […]}) on
        stdin and prints the version of each, a line each (how tests/flagd.rs checks
        that flagd and `promptgate resolve` agree)
"""

import json
import sys

from openfeature import api
from openfeature.contrib.provider.flagd import FlagdProvider
from openfeature.contrib.provider.flagd.config import ResolverType
from openfeature.evaluation_context import EvaluationContext


def client(flags_path, poll_ms=200):
    """An OpenFeature client answered by flagd's evaluator, reading `flags_path`."""
    api.set_provider_and_wait(
        FlagdProvider(
            resolver_type=ResolverType.FILE,
            offline_flag_source_path=flags_path,
            # How often the file is looked at for a new version.
            deadline_ms=poll_ms,
        )
    )
    return api.get_client()


def version(features, artifact, key, segments):
    """The version of `artifact` a request gets: what `promptgate resolve` answers."""
    context = EvaluationContext(targeting_key=key, attributes={"segments": list(segments)})
    details = features.get_string_details(artifact, "", context)
    if details.error_code is not None:
        raise RuntimeError(f"{artifact}: {details.error_code}: {details.error_message}")
    return details.value


def prompt(bundle, artifact, served):
    """The bundled content of version `served` of `artifact`."""
    for v in bundle["artifacts"][artifact]["versions"]:
        if v["version"] == served:
            return v
    raise KeyError(f"version {served} of {artifact} is not in the bundle")


def main(argv):
    flags_path, bundle_path = argv[1], argv[2]
    features = client(flags_path)
    if bundle_path == "-":
        for line in sys.stdin:
            r = json.loads(line)
            sys.stdout.write(version(features, r["artifact"], r["key"], r["segments"]) + "\n")
        sys.stdout.flush()
        return
    artifact = argv[3]
    with open(bundle_path, encoding="utf-8") as f:
        bundle = json.load(f)
    served = version(features, artifact, argv[4], argv[5:])
    content = prompt(bundle, artifact, served)
    print(f"version {served} ({content['model']['name']})")
    for message in content["messages"]:
        print(f"{message['role']}: {message['content']}")


if __name__ == "__main__":
    main(sys.argv)
