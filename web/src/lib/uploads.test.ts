import { describe, expect, it } from "vitest";

import { formatBytes } from "../pages/Volumes";
import { destination, droppedFiles, fingerprintOf, pickedFiles } from "./uploads";

function fileEntry(name: string, content = "x"): FileSystemFileEntry {
  const file = new File([content], name);
  return { name, isFile: true, isDirectory: false, file: (ok: (f: File) => void) => ok(file) } as unknown as FileSystemFileEntry;
}

function folderEntry(name: string, children: FileSystemEntry[], batch = 2): FileSystemDirectoryEntry {
  return {
    name,
    isFile: false,
    isDirectory: true,
    createReader: () => {
      let next = 0;
      // answers in batches, then an empty one, as browsers do
      return { readEntries: (ok: (entries: FileSystemEntry[]) => void) => ok(children.slice(next, (next += batch))) };
    },
  } as unknown as FileSystemDirectoryEntry;
}

function dropOf(entries: FileSystemEntry[]): DataTransferItemList {
  return entries.map((entry) => ({ webkitGetAsEntry: () => entry })) as unknown as DataTransferItemList;
}

describe("upload destinations", () => {
  it("join the folder shown and the file's path in what was dropped", () => {
    expect(destination("/", "a.txt")).toBe("/a.txt");
    expect(destination("/train/", "photos/2024/a.jpg")).toBe("/train/photos/2024/a.jpg");
    expect(destination("/데이터", "./한 글.txt")).toBe("/데이터/한 글.txt");
  });

  it("keep a picked folder's own name", () => {
    const file = new File(["abc"], "b.txt");
    Object.defineProperty(file, "webkitRelativePath", { value: "data/sub/b.txt" });
    expect(pickedFiles([file, new File(["z"], "c.txt")] as unknown as FileList).map((p) => p.relativePath)).toEqual(["data/sub/b.txt", "c.txt"]);
  });

  it("differ for the same file sent to two places, so each resumes on its own", () => {
    const file = new File(["abc"], "a.bin", { lastModified: 1 });
    expect(fingerprintOf(file, "/x/a.bin", "e")).not.toBe(fingerprintOf(file, "/y/a.bin", "e"));
    expect(fingerprintOf(file, "/x/a.bin", "e")).toBe(fingerprintOf(new File(["xyz"], "a.bin", { lastModified: 1 }), "/x/a.bin", "e"));
  });
});

describe("dropped folders", () => {
  it("are walked to every file, through every batch of entries", async () => {
    const drop = dropOf([
      folderEntry("data", [fileEntry("1.txt"), fileEntry("2.txt"), folderEntry("deep", [fileEntry("3.txt")]), fileEntry("4.txt")]),
      fileEntry("top.txt"),
    ]);
    const files = await droppedFiles(drop, null);
    expect(files.map((f) => f.relativePath)).toEqual(["data/1.txt", "data/2.txt", "data/deep/3.txt", "data/4.txt", "top.txt"]);
  });

  it("fall back to the plain file list where the browser gives no entries", async () => {
    const files = await droppedFiles(null, [new File(["a"], "a.txt")] as unknown as FileList);
    expect(files.map((f) => f.relativePath)).toEqual(["a.txt"]);
  });
});

describe("sizes", () => {
  it("read in binary units", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(10 * 1024 ** 3)).toBe("10.0 GiB");
    expect(formatBytes(300 * 1024 ** 2)).toBe("300 MiB");
  });
});
