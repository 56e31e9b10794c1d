import { PublishCommand, type MessageAttributeValue, type SNSClient } from '@aws-sdk/client-sns';
import type { Notification, Notifier, ProbeResult } from '../ports';

/** The shape of an injected logger; the rest parameter also admits the Powertools Logger. */
export interface AdapterLogger {
  warn(msg: string, ...extra: Record<string, unknown>[]): void;
  error(msg: string, ...extra: Record<string, unknown>[]): void;
}

export interface SnsNotifierOptions {
  client: SNSClient;
  topicArns: Record<Notification['topic'], string>;
  logger: AdapterLogger;
}

/** SNS Publish caps the body and all message attributes together at 256 KB (SNS quotas). */
export const MAX_MESSAGE_BYTES = 262_144;
/**
 * SQS accepts at most 10 message attributes, and an SQS subscription with raw message delivery
 * drops a message that carries more, so no publish here ever sends more than that.
 */
export const MAX_MESSAGE_ATTRIBUTES = 10;
/** The JSON field of the body that carries the attributes beyond the first ten. */
export const EXTRA_ATTRIBUTES_FIELD = 'extraAttributes';
const ATTRIBUTE_TYPE = 'String';

/**
 * The message would exceed what SNS accepts. Storing the payload elsewhere and publishing a
 * pointer to it is a later capability; until then the caller has to send less.
 */
export class MessageTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly limit: number = MAX_MESSAGE_BYTES,
  ) {
    super(`notification is ${bytes} bytes with its attributes; SNS accepts at most ${limit}`);
    this.name = 'MessageTooLargeError';
  }
}

/** More attributes than a subscriber can take, and no JSON body to carry the rest in. */
export class TooManyAttributesError extends Error {
  constructor(
    readonly count: number,
    readonly why: string,
  ) {
    super(`notification has ${count} attributes, more than ${MAX_MESSAGE_ATTRIBUTES}: ${why}`);
    this.name = 'TooManyAttributesError';
  }
}

export class SnsNotifier implements Notifier {
  private readonly client: SNSClient;
  private readonly topicArns: Record<Notification['topic'], string>;
  private readonly logger: AdapterLogger;

  constructor(options: SnsNotifierOptions) {
    this.client = options.client;
    this.topicArns = options.topicArns;
    this.logger = options.logger;
  }

  /** Not reached from a health check (that would need sns:GetTopicAttributes): config only. */
  async probe(): Promise<ProbeResult> {
    const missing = Object.entries(this.topicArns).filter(([, arn]) => !arn.startsWith('arn:'));
    if (missing.length > 0)
      throw new Error(`no topic ARN for ${missing.map(([t]) => t).join(', ')}`);
    return 'configured';
  }

  async publish(notification: Notification): Promise<{ id: string }> {
    const entries = Object.entries(notification.attributes ?? {});
    const { message, kept } = foldExtraAttributes(notification.message, entries);
    if (kept.length < entries.length) {
      const folded = entries.length - kept.length;
      this.logger.warn('message attributes folded into body', {
        topic: notification.topic,
        folded,
      });
    }

    const bytes = messageBytes(message, kept);
    if (bytes > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(bytes);

    const command = new PublishCommand({
      TopicArn: this.topicArns[notification.topic],
      Subject: notification.subject,
      Message: message,
      MessageAttributes: kept.length > 0 ? toSnsAttributes(kept) : undefined,
    });
    const result = await this.client.send(command);
    if (!result.MessageId) throw new Error('SNS Publish returned no MessageId');
    return { id: result.MessageId };
  }
}

type Attribute = [name: string, value: string];

/** SNS counts the body plus each attribute's name, data type and value. */
export function messageBytes(message: string, attributes: Attribute[]): number {
  let total = Buffer.byteLength(message, 'utf8');
  for (const [name, value] of attributes) {
    total += Buffer.byteLength(name, 'utf8');
    total += Buffer.byteLength(ATTRIBUTE_TYPE, 'utf8');
    total += Buffer.byteLength(value, 'utf8');
  }
  return total;
}

/**
 * Keeps the first ten attributes, in the caller's order, so subscription filter policies should
 * use those; the rest go into the JSON body. The field is spliced into the original text rather
 * than re-serialising it, so the producer's bytes (and large numbers) reach subscribers intact.
 */
function foldExtraAttributes(
  message: string,
  attributes: Attribute[],
): { message: string; kept: Attribute[] } {
  if (attributes.length <= MAX_MESSAGE_ATTRIBUTES) return { message, kept: attributes };

  const body = parseJsonObject(message);
  if (!body) throw new TooManyAttributesError(attributes.length, 'the body is not a JSON object');
  if (Object.hasOwn(body, EXTRA_ATTRIBUTES_FIELD)) {
    throw new TooManyAttributesError(
      attributes.length,
      `the body already has ${EXTRA_ATTRIBUTES_FIELD}`,
    );
  }

  const extra = JSON.stringify(Object.fromEntries(attributes.slice(MAX_MESSAGE_ATTRIBUTES)));
  const open = message.trimEnd().slice(0, -1);
  const separator = Object.keys(body).length > 0 ? ',' : '';
  return {
    message: `${open}${separator}"${EXTRA_ATTRIBUTES_FIELD}":${extra}}`,
    kept: attributes.slice(0, MAX_MESSAGE_ATTRIBUTES),
  };
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  return isObject ? (value as Record<string, unknown>) : undefined;
}

function toSnsAttributes(attributes: Attribute[]): Record<string, MessageAttributeValue> {
  const result: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of attributes) {
    result[name] = { DataType: ATTRIBUTE_TYPE, StringValue: value };
  }
  return result;
}
