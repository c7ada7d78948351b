import { describe, expect, it } from "vitest";

import { compact, emptySpec, fromYaml, joinCommand, splitCommand, toYaml } from "./spec";

describe("command lines", () => {
  it("split like a shell, quotes grouping words", () => {
    expect(splitCommand(`python train.py --name "my run" -x 'a b' ''`)).toEqual(["python", "train.py", "--name", "my run", "-x", "a b", ""]);
  });
  it("join back to a line that splits the same", () => {
    const argv = ["/bin/sh", "-c", "echo hi; sleep 1", "it's"];
    expect(splitCommand(joinCommand(argv))).toEqual(argv);
  });
});

describe("the YAML view", () => {
  it("round-trips the spec the form sends (also the CLI's spec file)", () => {
    const spec = { ...emptySpec("team-a"), name: "train", command: ["python", "t.py"], env: { SEED: "1" }, ports: [8888] };
    const parsed = fromYaml(toYaml(spec));
    expect(parsed).toEqual({ spec: compact(spec) });
  });
  it("leaves out empty values", () => {
    expect(toYaml({ workspace: "w", kind: "job", command: [], image: null, env: {} } as never)).toBe("workspace: w\nkind: job\n");
  });
  it("says what is wrong with text that is not a spec", () => {
    expect(fromYaml("- a\n- b")).toEqual({ error: expect.stringContaining("mapping") });
    expect("error" in fromYaml("workspace: [unclosed")).toBe(true);
  });
});
