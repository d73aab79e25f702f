import fs from 'node:fs/promises';
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { backoffMs, pause } from '../retry.js';

/** S3's limits: parts of at least 5 MiB (but the last), at most 10 000 of them. */
const SMALLEST_PART_BYTES = 5 * 1024 * 1024;
const MOST_PARTS = 10_000;
/** Each part is tried this many times (each try is itself up to the SDK's 3 attempts). */
const PART_TRIES = 5;

export interface MultipartTarget {
  client: S3Client;
  bucket: string;
  key: string;
  /** the usual size of a part (raised when the file would need more than 10 000) */
  partBytes: number;
  /** each part's request deadline */
  requestTimeout: number;
}

/**
 * Uploads a file in parts (a single PUT is refused over 5 GB, and a failure would send it all
 * again). Each part is read into memory from its offset, so the SDK, and this loop with backoff,
 * can send it again; parts go one at a time, so memory stays at one part. The object appears only
 * at completion, whole; a failed upload is aborted, so no parts are left to be billed.
 */
export async function uploadInParts(target: MultipartTarget, file: string, size: number): Promise<void> {
  const { client, bucket, key } = target;
  const partBytes = Math.max(SMALLEST_PART_BYTES, target.partBytes, Math.ceil(size / MOST_PARTS));
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: 'text/plain; charset=utf-8' }));
  const handle = await fs.open(file, 'r');
  try {
    const parts: { ETag: string; PartNumber: number }[] = [];
    const buffer = Buffer.allocUnsafe(Math.min(partBytes, size));
    for (let position = 0, number = 1; position < size; position += partBytes, number++) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(partBytes, size - position), position);
      const body = buffer.subarray(0, bytesRead);
      parts.push({ ETag: await uploadPart(target, UploadId!, number, body), PartNumber: number });
    }
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
  } catch (error) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => {}); // S3's lifecycle rules clean what this cannot
    throw error;
  } finally {
    await handle.close();
  }
}

async function uploadPart(target: MultipartTarget, uploadId: string, number: number, body: Buffer): Promise<string> {
  for (let failures = 0; ; failures++) {
    try {
      const { ETag } = await target.client.send(new UploadPartCommand({ Bucket: target.bucket, Key: target.key, UploadId: uploadId, PartNumber: number, Body: body, ContentLength: body.length }), { requestTimeout: target.requestTimeout });
      return ETag!;
    } catch (error) {
      if (failures + 1 >= PART_TRIES) throw error;
      await pause(backoffMs(failures, 200, 5000));
    }
  }
}
