/** Stream names: a source and a partition, reduced to characters safe in keys and logs. */
export function streamName(source: string, partition: string): string {
  const safe = partition.replace(/[^A-Za-z0-9._-]+/g, '-').slice(-120);
  return `${source}-${safe}`;
}

/** The last part of an ARN: a queue's or a stream's name. */
export function nameFromArn(arn: string | undefined, fallback: string): string {
  if (!arn) return fallback;
  const parts = arn.split(/[:/]/);
  return parts[parts.length - 1] || fallback;
}
