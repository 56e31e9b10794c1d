import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { mockClient } from 'aws-sdk-client-mock';
import {
  MAX_MESSAGE_ATTRIBUTES,
  MAX_MESSAGE_BYTES,
  MessageTooLargeError,
  SnsNotifier,
  TooManyAttributesError,
  messageBytes,
} from '../../functions/platform/notify/sns';

const client = new SNSClient({ region: 'us-east-1' });
const sns = mockClient(client);
const logger = { warn: jest.fn(), error: jest.fn() };
const topicArns = {
  alerts: 'arn:aws:sns:us-east-1:123456789012:vigil-alerts',
  breach: 'arn:aws:sns:us-east-1:123456789012:vigil-breach',
  drills: 'arn:aws:sns:us-east-1:123456789012:vigil-drills',
};
const notifier = new SnsNotifier({ client, topicArns, logger });

/** `count` attributes named attr01, attr02, … each with a value of `valueLength` characters. */
function attributes(count: number, valueLength = 8): Record<string, string> {
  const entries = Array.from({ length: count }, (_, i) => [
    `attr${String(i + 1).padStart(2, '0')}`,
    'v'.repeat(valueLength),
  ]);
  return Object.fromEntries(entries);
}

function publishedInput() {
  const calls = sns.commandCalls(PublishCommand);
  expect(calls).toHaveLength(1);
  return calls[0]?.args[0].input;
}

beforeEach(() => {
  sns.on(PublishCommand).resolves({ MessageId: 'message-1' });
});

afterEach(() => {
  sns.reset();
  jest.clearAllMocks();
});

afterAll(() => sns.restore());

describe('SnsNotifier', () => {
  it('publishes to the topic ARN of the notification and returns the MessageId', async () => {
    const result = await notifier.publish({
      topic: 'breach',
      subject: 'Possible breach',
      message: '{"incident":"inc-1"}',
      attributes: { severity: 'high' },
    });

    expect(result).toEqual({ id: 'message-1' });
    expect(publishedInput()).toEqual({
      TopicArn: topicArns.breach,
      Subject: 'Possible breach',
      Message: '{"incident":"inc-1"}',
      MessageAttributes: { severity: { DataType: 'String', StringValue: 'high' } },
    });
  });

  it('sends no attribute map when the notification has none', async () => {
    await notifier.publish({ topic: 'alerts', subject: 'Drill', message: 'plain text' });

    expect(publishedInput()?.MessageAttributes).toBeUndefined();
  });

  it('refuses a 261,000-byte body with about 2 KB of attributes without sending it', async () => {
    const notification = {
      topic: 'alerts' as const,
      subject: 'Too big',
      message: 'b'.repeat(261_000),
      attributes: attributes(8, 250),
    };

    const publishing = notifier.publish(notification);

    await expect(publishing).rejects.toBeInstanceOf(MessageTooLargeError);
    await expect(publishing).rejects.toMatchObject({ bytes: 261_000 + 8 * (6 + 6 + 250) });
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('sends a 255,000-byte body with 2 KB of attributes, still under the limit', async () => {
    const message = 'b'.repeat(255_000);
    const extra = attributes(8, 250);

    await notifier.publish({ topic: 'alerts', subject: 'Large', message, attributes: extra });

    expect(publishedInput()?.Message).toBe(message);
  });

  it('counts attribute names, the String type and values against the limit', async () => {
    const extra = { key: 'value' };
    const room = MAX_MESSAGE_BYTES - ('key'.length + 'String'.length + 'value'.length);
    const atLimit = { topic: 'alerts' as const, subject: 's', attributes: extra };

    await expect(notifier.publish({ ...atLimit, message: 'm'.repeat(room) })).resolves.toEqual({
      id: 'message-1',
    });
    await expect(notifier.publish({ ...atLimit, message: 'm'.repeat(room + 1) })).rejects.toThrow(
      MessageTooLargeError,
    );
  });

  it('counts multi-byte characters by their UTF-8 size', () => {
    expect(messageBytes('é', [['ключ', '€']])).toBe(2 + 8 + 6 + 3);
  });

  it('sends 10 of 12 attributes and carries the other 2 in the JSON body', async () => {
    const given = attributes(12);

    await notifier.publish({
      topic: 'drills',
      subject: 'Drill',
      message: '{"drill":"tabletop","id":12345678901234567890}',
      attributes: given,
    });

    const input = publishedInput();
    expect(Object.keys(input?.MessageAttributes ?? {})).toEqual(
      Object.keys(given).slice(0, MAX_MESSAGE_ATTRIBUTES),
    );
    expect(input?.Message).toBe(
      '{"drill":"tabletop","id":12345678901234567890,' +
        '"extraAttributes":{"attr11":"vvvvvvvv","attr12":"vvvvvvvv"}}',
    );
    expect(logger.warn).toHaveBeenCalledWith('message attributes folded into body', {
      topic: 'drills',
      folded: 2,
    });
  });

  it('folds extra attributes into an empty JSON object', async () => {
    await notifier.publish({
      topic: 'alerts',
      subject: 's',
      message: ' {} ',
      attributes: attributes(11),
    });

    expect(JSON.parse(publishedInput()?.Message ?? '')).toEqual({
      extraAttributes: { attr11: 'vvvvvvvv' },
    });
  });

  it('refuses more than 10 attributes when the body is not a JSON object', async () => {
    for (const message of ['plain text', '["an","array"]']) {
      const publishing = notifier.publish({
        topic: 'alerts',
        subject: 's',
        message,
        attributes: attributes(11),
      });
      await expect(publishing).rejects.toBeInstanceOf(TooManyAttributesError);
    }
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('refuses to overwrite an extraAttributes field already in the body', async () => {
    const message = '{"extraAttributes":{"kept":"by producer"}}';

    const publishing = notifier.publish({
      topic: 'alerts',
      subject: 's',
      message,
      attributes: attributes(11),
    });

    await expect(publishing).rejects.toBeInstanceOf(TooManyAttributesError);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('checks the size after folding, since folded attributes grow the body', async () => {
    const given = attributes(20, 40);
    const body = JSON.stringify({ pad: 'p'.repeat(MAX_MESSAGE_BYTES - 830) });
    const kept = Object.entries(given).slice(0, MAX_MESSAGE_ATTRIBUTES);
    expect(messageBytes(body, kept)).toBeLessThan(MAX_MESSAGE_BYTES);

    const publishing = notifier.publish({
      topic: 'alerts',
      subject: 's',
      message: body,
      attributes: given,
    });

    await expect(publishing).rejects.toBeInstanceOf(MessageTooLargeError);
    expect(sns.commandCalls(PublishCommand)).toHaveLength(0);
  });
});
