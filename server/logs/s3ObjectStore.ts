import fs from 'node:fs';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { backoffMs, pause } from '../retry.js';
import type { ObjectStore } from './archive.js';
import type { LogHandle } from './logSource.js';
import { uploadInParts } from './s3Multipart.js';

const DEFAULT_TIMEOUT_MS = 30_000;
/** 1 MiB/s: an upload slower than this fails (its socket idle for `timeoutMs` fails it sooner). */
const SLOWEST_UPLOAD_BYTES_PER_MS = 1024 * 1024 / 1000;
/**
 * A log up to this size is sent from memory, which the SDK can send again on its own retries; a
 * larger one from a stream, which a retry cannot rewind (aws-sdk-js-v3 #5479): each of our tries
 * opens a fresh one.
 */
const BUFFERED_UPLOAD_BYTES = 8 * 1024 * 1024;
const STREAM_TRIES = 3;

export interface UploadSizes {
  /** a log larger than this goes up in parts (S3 refuses a single PUT over 5 GB) */
  multipartBytes?: number;
  /** the size of each part */
  partBytes?: number;
}
const MULTIPART_BYTES = 64 * 1024 * 1024;
const PART_BYTES = 16 * 1024 * 1024;

/**
 * The archive on S3 (or anything that speaks its API), for hubs and workers on machines with no
 * shared folder: `HUB_ARCHIVE_S3=s3://bucket/prefix` with the usual AWS settings (region, keys,
 * AWS_ENDPOINT_URL_S3 for another server). Reads are ranged GETs, so a page of a finished log costs
 * what it returns, as from a file.
 */
export class S3ObjectStore implements ObjectStore {
  private readonly client: S3Client;

  /**
   * `timeoutMs`: each try of a request (connecting, an idle socket, the whole exchange) fails past it;
   * an upload gets more, for its size. The SDK tries each request 3 times, with backoff and jitter.
   */
  constructor(private readonly bucket: string, private readonly prefix: string, config: S3ClientConfig = {}, private readonly timeoutMs = DEFAULT_TIMEOUT_MS, private readonly sizes: UploadSizes = {}) {
    // Checksums only where S3 requires them: S3-compatible servers (MinIO, s3rver...) do not all
    // understand the SDK's default aws-chunked uploads with checksum trailers, and store the framing.
    this.client = new S3Client({
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      requestHandler: { connectionTimeout: timeoutMs, socketTimeout: timeoutMs, requestTimeout: timeoutMs, throwOnRequestTimeout: true },
      ...config,
    });
  }

  /** `s3://bucket/prefix` → the store. */
  static fromUrl(url: string, config: S3ClientConfig = {}, timeoutMs = DEFAULT_TIMEOUT_MS, sizes: UploadSizes = {}): S3ObjectStore {
    const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
    if (!match) throw new Error(`Expected an archive URL like s3://bucket/prefix, got ${JSON.stringify(url)}`);
    return new S3ObjectStore(match[1], match[2].replace(/\/+$/, ''), config, timeoutMs, sizes);
  }

  private key(key: string): string {
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  /** One PUT, or parts for a large log: S3 stores an object whole or not at all. */
  async put(key: string, file: string): Promise<void> {
    const { size } = await fs.promises.stat(file);
    const partBytes = this.sizes.partBytes ?? PART_BYTES;
    if (size > (this.sizes.multipartBytes ?? MULTIPART_BYTES)) {
      const requestTimeout = this.timeoutMs + Math.ceil(partBytes / SLOWEST_UPLOAD_BYTES_PER_MS);
      await uploadInParts({ client: this.client, bucket: this.bucket, key: this.key(key), partBytes, requestTimeout }, file, size);
      return;
    }
    // A large log takes longer to send: its deadline grows with its size (at the slowest rate accepted).
    const requestTimeout = this.timeoutMs + Math.ceil(size / SLOWEST_UPLOAD_BYTES_PER_MS);
    const buffered = size <= BUFFERED_UPLOAD_BYTES ? await fs.promises.readFile(file) : null;
    for (let failures = 0; ; failures++) {
      try {
        const body = buffered ?? fs.createReadStream(file);
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(key), Body: body, ContentLength: size, ContentType: 'text/plain; charset=utf-8' }), { requestTimeout });
        return;
      } catch (error) {
        if (buffered || failures + 1 >= STREAM_TRIES) throw error; // the SDK's own retries were the tries of a buffered body
        await pause(backoffMs(failures, 200, 2000));
      }
    }
  }

  /** One PUT from memory (the SDK sends it again on its own retries). */
  async putBytes(key: string, bytes: Buffer): Promise<void> {
    const requestTimeout = this.timeoutMs + Math.ceil(bytes.length / SLOWEST_UPLOAD_BYTES_PER_MS);
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(key), Body: bytes, ContentLength: bytes.length, ContentType: 'application/octet-stream' }), { requestTimeout });
  }

  async open(key: string): Promise<LogHandle | null> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return new S3Handle(this.client, this.bucket, this.key(key), head.ContentLength ?? 0);
    } catch (error) {
      if ((error as { name?: string }).name === 'NotFound' || (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return null;
      throw error;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
  }

  /** Readiness: the bucket answers (a key that is not there is an answer). */
  async check(): Promise<void> {
    await this.open('.ready');
  }

  close(): void {
    this.client.destroy();
  }
}

/** A stored object read by ranges; its size never changes (archives are written once). */
class S3Handle implements LogHandle {
  constructor(private readonly client: S3Client, private readonly bucket: string, private readonly key: string, private readonly size: number) {}

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    const end = Math.min(this.size, position + length);
    if (position >= end) return { bytesRead: 0 };
    const { Body } = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key, Range: `bytes=${position}-${end - 1}` }));
    const bytes = Buffer.from(await Body!.transformToByteArray());
    return { bytesRead: bytes.copy(buffer, offset, 0, Math.min(bytes.length, length)) };
  }

  async stat(): Promise<{ size: number; ino: number }> {
    return { size: this.size, ino: 0 };
  }

  async close(): Promise<void> {}
}
