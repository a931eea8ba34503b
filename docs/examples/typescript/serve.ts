// Serve the prompt version a request gets, through OpenFeature and flagd, in TypeScript.
//
// The runtime config is exported for flagd (`promptgate export --format flagd -o
// flags.json`, or `--flagd flags.json` on every rollout command) and the prompts of every
// version it names are bundled (`promptgate bundle -o bundle.json`). flagd's in-process
// evaluator reads the flag file and re-reads it when a rollout command replaces it; the
// bundle gives the version's messages, model and parameters.
//
//   npx tsx serve.ts flags.json bundle.json support.assistant KEY [SEGMENT ...]
//       prints the version and the messages a request of KEY in SEGMENTs is served
//   npx tsx serve.ts flags.json -
//       reads requests as JSON lines ({"artifact", "key", "segments"}) on stdin and
//       prints the version of each, a line each (tests/flagd.rs)

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { FlagdProvider } from "@openfeature/flagd-provider";
import { OpenFeature, type Client } from "@openfeature/server-sdk";

interface Message {
  role: string;
  content: string;
}

interface BundledVersion {
  version: string;
  model: { name: string };
  messages: Message[];
}

interface Bundle {
  artifacts: Record<string, { versions: BundledVersion[] }>;
}

/** An OpenFeature client answered by flagd's in-process evaluator reading `flags`. */
async function client(flags: string): Promise<Client> {
  await OpenFeature.setProviderAndWait(
    new FlagdProvider({ resolverType: "in-process", offlineFlagSourcePath: flags }),
  );
  return OpenFeature.getClient();
}

/** The version of `artifact` a request gets: what `promptgate resolve` answers. */
async function version(
  features: Client,
  artifact: string,
  key: string,
  segments: string[],
): Promise<string> {
  const details = await features.getStringDetails(artifact, "", {
    targetingKey: key,
    segments,
  });
  if (details.errorCode) {
    throw new Error(`${artifact}: ${details.errorCode}: ${details.errorMessage ?? ""}`);
  }
  return details.value;
}

/** The bundled content of version `served` of `artifact`. */
function prompt(bundle: Bundle, artifact: string, served: string): BundledVersion {
  const found = bundle.artifacts[artifact]?.versions.find((v) => v.version === served);
  if (!found) throw new Error(`version ${served} of ${artifact} is not in the bundle`);
  return found;
}

async function main(argv: string[]): Promise<void> {
  const [flags, bundlePath, artifact, key, ...segments] = argv;
  const features = await client(flags);
  if (bundlePath === "-") {
    for await (const line of createInterface({ input: process.stdin })) {
      const r = JSON.parse(line) as { artifact: string; key: string; segments: string[] };
      process.stdout.write(`${await version(features, r.artifact, r.key, r.segments)}\n`);
    }
  } else {
    const bundle = JSON.parse(readFileSync(bundlePath, "utf8")) as Bundle;
    const served = await version(features, artifact, key, segments);
    const content = prompt(bundle, artifact, served);
    console.log(`version ${served} (${content.model.name})`);
    for (const m of content.messages) console.log(`${m.role}: ${m.content}`);
  }
  await OpenFeature.close();
}

await main(process.argv.slice(2));
