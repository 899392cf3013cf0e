/*
 * zkimport: `znoded --import-zookeeper ZK_DATADIR[:ZK_DATALOGDIR] CONFIG`
 * (zkimport.c).
 */
#ifndef ZNODED_ZKIMPORT_H
#define ZNODED_ZKIMPORT_H

/*
 * Builds the tree an Apache ZooKeeper member would load from its data
 * directory (dirs: "DATADIR" or "DATADIR:DATALOGDIR", as its dataDir and
 * dataLogDir; snapshots under DATADIR/version-2, logs under
 * DATALOGDIR/version-2) and writes it as a store into the dataDir of the
 * zoo.cfg at config_path, which must hold no store (a myid aside).  Prints
 * one line saying what it imported.  Returns the exit status: 0 imported,
 * 1 refused or failed (one line on stderr says why, naming the file when a
 * file is at fault, and nothing is left in the directory), 2 a
 * configuration error.
 */
int zkimport_run(const char *dirs, const char *config_path);

#endif
