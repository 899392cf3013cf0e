/*
 * backup: `znode backup FILE`, a consistent backup of a running member
 * fetched from its AdminServer's snapshot command (tools/backup.c).
 */
#ifndef ZNODE_CLI_BACKUP_H
#define ZNODE_CLI_BACKUP_H

/*
 * Asks each host of hosts (ZooKeeper's connect string; its client ports are
 * not used) in turn for GET http://HOST:admin_port/commands/snapshot until
 * one answers, writes the backup to file (through file.tmp, fsynced, then
 * renamed) and prints the zxid it holds.  auth, when not NULL, is sent as
 * "Authorization: digest USER:PASSWORD" (the snapshot needs ALL on /).  Returns the CLI's exit status: 0,
 * 1 a server answered with an error, 3 no server could be reached or the
 * transfer broke off.
 */
int cli_backup(const char *hosts, int admin_port, const char *auth, const char *file,
               long timeout_ms);

#endif
