// Uploads into a volume over TUS with tus-js-client: files and whole folders (dropped or picked), a few at
// a time, each with its own progress, cancellable, and resumable after a page reload: tus-js-client keeps
// each unfinished upload's address in localStorage under a fingerprint of the file and its destination,
// so dropping the same file on the same folder again continues from the offset the server holds.
import * as tus from "tus-js-client";

import { authHeaders } from "../auth/session";

export const CHUNK_BYTES = 16 * 1024 * 1024; // one PATCH per 16 MiB: an interruption re-sends at most that
export const PARALLEL = 3;

/** A file and where it goes inside the volume (relative to the folder it was dropped on). */
export interface PickedFile {
  file: File;
  relativePath: string; // "a.txt", or "photos/2024/a.jpg" for a file of a dropped folder
}

export type UploadStatus = "queued" | "uploading" | "done" | "failed" | "cancelled";

export interface UploadItem {
  key: string;
  path: string; // destination inside the volume, from its root
  size: number;
  sent: number;
  resumedFrom: number | null; // the offset a previous upload (e.g. before a reload) had reached
  status: UploadStatus;
  error?: string;
}

/** `folder` + `relativePath`, as a path from the volume's root ("/train" + "a/b.txt" → "/train/a/b.txt"). */
export function destination(folder: string, relativePath: string): string {
  const parts = [...folder.split("/"), ...relativePath.split("/")].filter((p) => p && p !== ".");
  return "/" + parts.join("/");
}

/** The files of a drop, folders walked recursively (Chromium, Firefox and Safari all give entries). */
export async function droppedFiles(items: DataTransferItemList | null, files: FileList | null): Promise<PickedFile[]> {
  const entries = items ? Array.from(items, (item) => item.webkitGetAsEntry?.() ?? null) : [];
  if (entries.length === 0 || entries.some((entry) => entry === null)) {
    return Array.from(files ?? [], (file) => ({ file, relativePath: file.name }));
  }
  const picked: PickedFile[] = [];
  for (const entry of entries) await walk(entry as FileSystemEntry, "", picked);
  return picked;
}

async function walk(entry: FileSystemEntry, prefix: string, into: PickedFile[]): Promise<void> {
  const path = prefix ? `${prefix}/${entry.name}` : entry.name;
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    into.push({ file, relativePath: path });
    return;
  }
  if (!entry.isDirectory) return;
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  // readEntries answers in batches (100 in Chromium) until it answers an empty one
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const child of batch) await walk(child, path, into);
  }
}

/** Files picked with an <input type=file> (with `webkitdirectory`, each knows its path in the folder). */
export function pickedFiles(files: FileList | null): PickedFile[] {
  return Array.from(files ?? [], (file) => ({ file, relativePath: file.webkitRelativePath || file.name }));
}

/** What identifies "the same upload" across reloads: the file, its destination, the volume's address. */
export function fingerprintOf(file: File, path: string, endpoint: string): string {
  return ["astrago", endpoint, path, file.size, file.lastModified].join("|");
}

export interface UploadCallbacks {
  onChange: (item: UploadItem) => void;
}

/** One file's upload; `start` resumes a previous upload of the same file to the same place if there is one. */
export class FileUpload {
  item: UploadItem;
  private upload: tus.Upload | null = null;
  private settled: Promise<void> | null = null;

  constructor(
    readonly picked: PickedFile,
    readonly endpoint: string,
    folder: string,
    private readonly callbacks: UploadCallbacks,
  ) {
    const path = destination(folder, picked.relativePath);
    this.item = { key: `${endpoint}|${path}`, path, size: picked.file.size, sent: 0, resumedFrom: null, status: "queued" };
  }

  private update(change: Partial<UploadItem>): void {
    this.item = { ...this.item, ...change };
    this.callbacks.onChange(this.item);
  }

  start(): Promise<void> {
    if (this.settled) return this.settled;
    const { file } = this.picked;
    const path = this.item.path;
    this.settled = new Promise<void>((resolve) => {
      const upload = new tus.Upload(file, {
        endpoint: this.endpoint,
        chunkSize: CHUNK_BYTES,
        retryDelays: [0, 1000, 3000, 5000, 10000],
        metadata: { path, filename: file.name, filetype: file.type || "application/octet-stream" },
        headers: authHeaders(),
        fingerprint: async () => fingerprintOf(file, path, this.endpoint),
        storeFingerprintForResuming: true,
        removeFingerprintOnSuccess: true,
        onProgress: (sent) => this.update({ sent, status: "uploading" }),
        onAfterResponse: (request, response) => {
          // a HEAD is how a resumed upload learns how much the server already holds
          const offset = Number(response.getHeader("Upload-Offset"));
          if (request.getMethod() === "HEAD" && offset > 0 && this.item.resumedFrom === null) {
            this.update({ resumedFrom: offset, sent: offset });
          }
        },
        onSuccess: () => {
          this.update({ sent: file.size, status: "done" });
          resolve();
        },
        onError: (error) => {
          if (this.item.status !== "cancelled") this.update({ status: "failed", error: describeError(error) });
          resolve();
        },
      });
      this.upload = upload;
      this.update({ status: "uploading" });
      void upload.findPreviousUploads().then(
        (previous) => {
          if (this.item.status === "cancelled") return resolve();
          const latest = previous.sort((a, b) => b.creationTime.localeCompare(a.creationTime))[0];
          if (latest) upload.resumeFromPreviousUpload(latest);
          upload.start();
        },
        () => upload.start(),
      );
    });
    return this.settled;
  }

  /** Stops it and removes what the server holds of it (TUS termination). */
  async cancel(): Promise<void> {
    if (this.item.status === "done" || this.item.status === "cancelled") return;
    this.update({ status: "cancelled" });
    if (this.upload) await this.upload.abort(true).catch(() => undefined);
  }
}

function describeError(error: Error): string {
  const response = (error as tus.DetailedError).originalResponse;
  if (response) {
    try {
      const body = JSON.parse(response.getBody()) as { detail?: string };
      if (body.detail) return body.detail;
    } catch {
      // not a problem+json body
    }
    return `the server answered ${response.getStatus()}`;
  }
  return error.message.split("\n")[0] ?? "the upload failed";
}

/** Runs uploads `PARALLEL` at a time, in the order they were added. */
export class UploadQueue {
  private waiting: FileUpload[] = [];
  private running = 0;

  add(uploads: FileUpload[]): void {
    this.waiting.push(...uploads);
    this.pump();
  }

  private pump(): void {
    while (this.running < PARALLEL && this.waiting.length > 0) {
      const next = this.waiting.shift()!;
      if (next.item.status === "cancelled") continue;
      this.running += 1;
      void next.start().finally(() => {
        this.running -= 1;
        this.pump();
      });
    }
  }
}
