// Uploads a file to an AstraGo volume with tus-js-client, as the console does, and can stop after the
// first chunk to be resumed by a second run: node upload.mjs ENDPOINT TOKEN FILE PATH [--stop-after-first-chunk | --resume URL]
import { readFileSync } from "node:fs";
import { Upload } from "tus-js-client";

const [endpoint, token, file, path, flag, resumeUrl] = process.argv.slice(2);
const data = readFileSync(file);
let chunks = 0;

const upload = new Upload(data, {
  endpoint,
  uploadUrl: flag === "--resume" ? resumeUrl : null,
  headers: { Authorization: `Bearer ${token}` },
  metadata: { path, filename: path.split("/").pop(), filetype: "application/octet-stream" },
  chunkSize: 1024 * 1024,
  retryDelays: [200, 500, 1000],
  onChunkComplete: (chunkSize, bytesAccepted) => {
    chunks += 1;
    if (flag === "--stop-after-first-chunk") {
      upload.abort().then(() => {
        console.log(JSON.stringify({ stopped: true, url: upload.url, offset: bytesAccepted }));
        process.exit(0);
      });
    }
  },
  onError: (error) => {
    console.error(String(error));
    process.exit(1);
  },
  onSuccess: () => {
    console.log(JSON.stringify({ done: true, url: upload.url, chunks }));
  },
});
upload.start();
