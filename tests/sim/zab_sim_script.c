/*
 * zab_sim_script: runs a scenario script against the simulated world in
 * manual mode (nothing moves unless a command says so) and compares what
 * happens with the expected trace written in the script, as etcd's raft
 * interaction tests do.  A script is a sequence of blocks:
 *
 *     command args
 *     ----
 *     expected output lines
 *     (blank line)
 *
 * Commands: members N [observers K] [spares S] | join <id> <from> (an idle id
 *           starts as a joiner knowing the membership of member <from>)
 *           | reconfig <leader> voters 1,2,3 [observers 4,5] | tick <id|all> [times] | deliver [<from>-><to>|all] [max]
 *           | drop <from>-><to> | persist <id|all> | persistfail <id> | crash <id> | restart <id>
 *           | propose <id> <data> | stabilize | status | disk <id>
 *           | partition <ids> | <ids> | heal | compact <applies>
 * Lines starting with # are comments.  A safety violation fails the script.
 *
 *   zab_sim_script FILE            check; exit 1 and show the difference if any
 *   zab_sim_script --rewrite FILE  write the actual output into FILE
 * (deliver/drop take 0 for "any member": "deliver 0->2" is everything to 2.)
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>

#define SCRIPT_LINE_MAX 512
#define SCRIPT_BYTES_MAX (1u << 20)

static struct sim_world *world;

static int member_arg(const char *s) { return (!s || !strcmp(s, "all")) ? 0 : atoi(s); }

static void parse_pair(const char *s, int *from, int *to)
{
    *from = *to = 0;
    if (!s || !strcmp(s, "all"))
        return;
    sscanf(s, "%d->%d", from, to);
}

/* "1,2,3" -> ids; -1 if malformed or too many. */
static int parse_ids(const char *s, uint32_t *out)
{
    int n = 0;
    char copy[64];
    snprintf(copy, sizeof copy, "%s", s);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n >= SIM_MEMBERS_MAX || atoi(tok) <= 0)
            return -1;
        out[n++] = (uint32_t)atoi(tok);
    }
    return n;
}

/* Runs one command, writing what happened to out.  Returns -1 on a bad command. */
static int run_command(char *line, FILE *out)
{
    char *argv[16];
    int argc = 0;
    for (char *tok = strtok(line, " \t"); tok && argc < 16; tok = strtok(NULL, " \t"))
        argv[argc++] = tok;
    if (argc == 0)
        return 0;
    const char *cmd = argv[0];
    if (!strcmp(cmd, "members")) {
        sim_world_free(world);
        struct sim_options o = {.seed = 1, .members = argc > 1 ? atoi(argv[1]) : 3, .manual = true,
                                .trace = true, .out = out};
        for (int i = 2; i + 1 < argc; i += 2) {
            if (!strcmp(argv[i], "observers"))
                o.observers = atoi(argv[i + 1]); /* the last ones */
            else if (!strcmp(argv[i], "spares"))
                o.spares = atoi(argv[i + 1]); /* idle ids after the members */
            else
                return -1;
        }
        if (o.spares < 0 || o.members + o.spares > SIM_MEMBERS_MAX)
            return -1;
        if (o.members < 1 || o.members > SIM_MEMBERS_MAX || o.observers < 0 || o.observers >= o.members)
            return -1;
        world = sim_world_new(&o);
        return 0;
    }
    if (!world)
        return -1;
    sim_set_output(world, out);
    if (!strcmp(cmd, "tick")) {
        int times = argc > 2 ? atoi(argv[2]) : 1;
        for (int i = 0; i < times; i++)
            sim_tick(world, member_arg(argc > 1 ? argv[1] : NULL));
    } else if (!strcmp(cmd, "deliver")) {
        int from, to;
        parse_pair(argc > 1 ? argv[1] : NULL, &from, &to);
        sim_deliver(world, from, to, argc > 2 ? atoi(argv[2]) : 0);
    } else if (!strcmp(cmd, "drop")) {
        int from, to;
        parse_pair(argc > 1 ? argv[1] : NULL, &from, &to);
        fprintf(out, "dropped %d\n", sim_drop(world, from, to));
    } else if (!strcmp(cmd, "persist")) {
        sim_persist(world, member_arg(argc > 1 ? argv[1] : NULL));
    } else if (!strcmp(cmd, "persistfail") && argc > 1) {
        sim_persist_fail(world, atoi(argv[1]));
    } else if (!strcmp(cmd, "crash") && argc > 1) {
        sim_crash(world, atoi(argv[1]));
    } else if (!strcmp(cmd, "restart") && argc > 1) {
        sim_restart(world, atoi(argv[1]));
    } else if (!strcmp(cmd, "propose") && argc > 2) {
        sim_propose(world, atoi(argv[1]), argv[2]);
    } else if (!strcmp(cmd, "stabilize")) {
        sim_stabilize(world, 100);
    } else if (!strcmp(cmd, "status")) {
        sim_print_status(world);
    } else if (!strcmp(cmd, "disk") && argc > 1) {
        sim_print_log(world, atoi(argv[1]));
    } else if (!strcmp(cmd, "compact") && argc > 1) {
        sim_set_compaction(world, atoi(argv[1]));
    } else if (!strcmp(cmd, "join") && argc > 2) {
        if (sim_join(world, atoi(argv[1]), atoi(argv[2])) < 0)
            fprintf(out, "join refused\n");
    } else if (!strcmp(cmd, "reconfig") && argc > 3 && !strcmp(argv[2], "voters")) {
        uint32_t voters[SIM_MEMBERS_MAX], observers[SIM_MEMBERS_MAX];
        int nv = parse_ids(argv[3], voters), no = 0;
        if (argc > 5 && !strcmp(argv[4], "observers"))
            no = parse_ids(argv[5], observers);
        if (nv < 0 || no < 0)
            return -1;
        sim_propose_config(world, atoi(argv[1]), voters, nv, observers, no);
    } else if (!strcmp(cmd, "linkdown") && argc > 2) {
        sim_link(world, atoi(argv[1]), atoi(argv[2]), false);
    } else if (!strcmp(cmd, "linkup") && argc > 2) {
        sim_link(world, atoi(argv[1]), atoi(argv[2]), true);
    } else if (!strcmp(cmd, "heal")) {
        sim_heal(world);
    } else if (!strcmp(cmd, "partition")) {
        int group[SIM_MEMBERS_MAX + 1] = {0}, g = 0;
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "|"))
                g++;
            else if (atoi(argv[i]) >= 1 && atoi(argv[i]) <= SIM_MEMBERS_MAX)
                group[atoi(argv[i])] = g;
        }
        sim_partition(world, group);
    } else {
        return -1;
    }
    return 0;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        exit(2);
    }
    char *buf = malloc(SCRIPT_BYTES_MAX + 1);
    size_t n = buf ? fread(buf, 1, SCRIPT_BYTES_MAX, f) : 0;
    if (!buf || (n == SCRIPT_BYTES_MAX && !feof(f))) {
        fprintf(stderr, "%s: over %u bytes\n", path, SCRIPT_BYTES_MAX);
        exit(2);
    }
    buf[n] = 0;
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    bool rewrite = argc == 3 && !strcmp(argv[1], "--rewrite");
    if (argc != 2 && !rewrite) {
        fprintf(stderr, "usage: zab_sim_script [--rewrite] FILE\n");
        return 2;
    }
    const char *path = argv[argc - 1];
    char *text = read_file(path);
    char *rewritten = NULL;
    size_t rewritten_size = 0;
    FILE *result = open_memstream(&rewritten, &rewritten_size);
    int failures = 0, blocks = 0, lineno = 0;
    char *cursor = text;
    while (*cursor) {
        char *line = cursor;
        char *nl = strchr(cursor, '\n');
        cursor = nl ? nl + 1 : cursor + strlen(cursor);
        if (nl)
            *nl = 0;
        lineno++;
        if (line[0] == 0 || line[0] == '#') {
            fprintf(result, "%s\n", line);
            continue;
        }
        /* a command, then ----, then expected lines up to a blank line */
        char command[SCRIPT_LINE_MAX];
        snprintf(command, sizeof command, "%s", line);
        int command_line = lineno;
        fprintf(result, "%s\n----\n", command);
        char *expected = NULL;
        size_t expected_size = 0;
        FILE *exp = open_memstream(&expected, &expected_size);
        if (!strncmp(cursor, "----\n", 5)) {
            cursor += 5;
            lineno++;
            while (*cursor && *cursor != '\n') {
                char *end = strchr(cursor, '\n');
                size_t len = end ? (size_t)(end - cursor) : strlen(cursor);
                fwrite(cursor, 1, len, exp);
                fputc('\n', exp);
                cursor += len + (end ? 1 : 0);
                lineno++;
            }
        }
        fclose(exp);
        char *actual = NULL;
        size_t actual_size = 0;
        FILE *act = open_memstream(&actual, &actual_size);
        char scratch[SCRIPT_LINE_MAX];
        snprintf(scratch, sizeof scratch, "%s", command);
        if (run_command(scratch, act) < 0)
            fprintf(act, "error: bad command\n");
        if (world && sim_violation(world))
            fprintf(act, "VIOLATION: %s\n", sim_violation(world));
        fclose(act);
        fputs(actual, result);
        blocks++;
        if (strcmp(actual, expected) != 0) {
            failures++;
            if (!rewrite)
                fprintf(stderr, "%s:%d: %s\n--- expected\n%s--- actual\n%s\n", path, command_line, command,
                        expected, actual);
        }
        free(expected);
        free(actual);
        if (*cursor == '\n') {
            cursor++;
            lineno++;
        }
        fputc('\n', result);
    }
    fclose(result);
    sim_world_free(world);
    int rc = 0;
    if (rewrite) {
        /* the block separators add a final blank line: keep exactly one */
        while (rewritten_size >= 2 && rewritten[rewritten_size - 1] == '\n' && rewritten[rewritten_size - 2] == '\n')
            rewritten[--rewritten_size] = 0;
        FILE *f = fopen(path, "w");
        if (!f || fwrite(rewritten, 1, rewritten_size, f) != rewritten_size) {
            perror(path);
            rc = 2;
        }
        if (f)
            fclose(f);
    } else {
        printf("%s: %d blocks, %d differ\n", path, blocks, failures);
        rc = failures ? 1 : 0;
    }
    free(rewritten);
    free(text);
    return rc;
}
