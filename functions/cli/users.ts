import os from 'node:os';
import type { Command } from 'commander';
import { identity } from '../identity/context';
import { PERSON_ROLES, type PersonRole } from '../identity/model';
import { nameFromEmail } from '../identity/users';
import { withLocalRuntime } from './local';

/**
 * `vigil users create|list|unlock`: accounts on the local platform, each enrolled by a
 * one-time link. What the command changes is audited under the operator's login name.
 */
export function usersCommands(cli: Command): void {
  const users = cli.command('users').description('manage user accounts');
  users
    .command('create')
    .description('create an account and print its one-time enrolment link')
    .requiredOption('--email <email>', 'work email address')
    .requiredOption('--role <role...>', `one or more of: ${PERSON_ROLES.join(', ')}`)
    .option('--name <name>', 'first and last name (default: from the email)')
    .option('--employee-id <id>', 'employee number (a person needs this or --npi)')
    .option('--npi <npi>', 'National Provider Identifier (10 digits)')
    .action(
      (opts: {
        email: string;
        role: PersonRole[];
        name?: string;
        employeeId?: string;
        npi?: string;
      }) =>
        withLocalRuntime(async () => {
          const { user, enrolmentToken } = await identity().users.create({
            email: opts.email,
            name: opts.name ?? nameFromEmail(opts.email),
            employeeId: opts.employeeId,
            npi: opts.npi,
            roles: opts.role,
          });
          await audited('user_created', 'create', user.id);
          process.stdout.write(`${enrolmentLink(enrolmentToken)}\n`);
          process.stderr.write(
            `account ${user.email} (${user.roles.join(', ')}) created; the link works once, for 24 hours\n`,
          );
        }),
    );
  users
    .command('unlock')
    .description(
      'unlock an account, for when no other security officer can: the only officer locked out',
    )
    .requiredOption('--email <email>', 'work email address of the account')
    .action((opts: { email: string }) =>
      withLocalRuntime(async () => {
        const { users } = identity();
        const user = await users.byEmail(opts.email);
        if (!user) throw new Error(`no account has the email ${opts.email}`);
        if (user.status !== 'locked')
          throw new Error(`${user.email} is ${user.status}, not locked`);
        await users.unlock(user.id);
        await audited('unlock', 'update', user.id);
        process.stderr.write(`${user.email} unlocked\n`);
      }),
    );
  users
    .command('list')
    .description('list accounts')
    .action(() =>
      withLocalRuntime(async () => {
        for (const u of await identity().users.list()) {
          const mfa = u.mfaEnrolledAt ? 'mfa' : 'no-mfa';
          process.stdout.write(`${u.id}\t${u.email}\t${u.roles.join(',')}\t${u.status}\t${mfa}\n`);
        }
      }),
    );
}

function audited(event: string, action: 'create' | 'update', userId: string): Promise<void> {
  return identity().audit({
    actorId: `cli:${os.userInfo().username}`,
    action,
    event,
    resourceType: 'User',
    resourceId: userId,
    outcome: 'success',
  });
}

export function enrolmentLink(token: string): string {
  return `${identity().publicUrl}/enrol#token=${token}`;
}
