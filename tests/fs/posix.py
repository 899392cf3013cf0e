#!/usr/bin/python3
"""POSIX conformance of the znodefs mount, as a program observes it.

    posix.py DIR [WORD]

Each check is one behaviour from the POSIX text of the call (open, read, write, lseek,
ftruncate, stat, mkdir, rmdir, unlink, rename, link, symlink, mknod, chmod, chown, utimensat),
run in its own subdirectory of DIR, or, for what the mount does not support, the errno it
answers instead (filesystem.md). Prints one line per failed check and a summary
`posix: N checks, M failed`; exits 1 when one failed. With WORD, only the checks whose name
holds it (to run them on a local filesystem for the answer Linux gives).
"""
import ctypes
import errno
import os
import stat
import sys
import time

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


class Failed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failed(what)


def expect_errno(want, fn, *args):
    try:
        fn(*args)
    except OSError as e:
        expect(e.errno == want, "%s, want %s" % (errno.errorcode.get(e.errno, e.errno), errno.errorcode[want]))
        return
    raise Failed("succeeded, want %s" % errno.errorcode[want])


def put(path, data):
    with open(path, "wb") as f:
        f.write(data)


def get(path):
    with open(path, "rb") as f:
        return f.read()


# ---- open ----

@check
def open_creat_excl_fails_with_eexist_when_the_file_exists(d):
    put(d + "/f", b"x")
    expect_errno(errno.EEXIST, os.open, d + "/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL)


@check
def open_creat_excl_creates_an_empty_file(d):
    os.close(os.open(d + "/f", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    st = os.stat(d + "/f")
    expect(stat.S_ISREG(st.st_mode) and st.st_size == 0, "mode %o size %d" % (st.st_mode, st.st_size))


@check
def open_without_creat_fails_with_enoent_when_missing(d):
    expect_errno(errno.ENOENT, os.open, d + "/missing", os.O_RDONLY)


@check
def open_trunc_leaves_size_zero(d):
    put(d + "/f", b"some data")
    fd = os.open(d + "/f", os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    expect(os.stat(d + "/f").st_size == 0 and get(d + "/f") == b"", "size %d" % os.stat(d + "/f").st_size)


@check
def open_trunc_gives_length_zero_on_return_from_open(d):
    put(d + "/f", b"some data")
    fd = os.open(d + "/f", os.O_RDWR | os.O_TRUNC)
    try:
        size, data = os.fstat(fd).st_size, os.pread(fd, 100, 0)
    finally:
        os.close(fd)
    expect(size == 0 and data == b"", "st_size %d, read %r" % (size, data))


@check
def open_trunc_then_write_holds_only_the_new_data(d):
    put(d + "/f", b"a much longer old value")
    put(d + "/f", b"new")
    expect(get(d + "/f") == b"new", repr(get(d + "/f")))


@check
def o_append_writes_at_the_end_whatever_the_offset(d):
    put(d + "/f", b"abc")
    fd = os.open(d + "/f", os.O_WRONLY | os.O_APPEND)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"de")
    os.close(fd)
    expect(get(d + "/f") == b"abcde", repr(get(d + "/f")))


@check
def o_directory_on_a_file_fails_with_enotdir(d):
    put(d + "/f", b"x")
    expect_errno(errno.ENOTDIR, os.open, d + "/f", os.O_RDONLY | os.O_DIRECTORY)


@check
def opening_a_directory_for_writing_fails_with_eisdir(d):
    os.mkdir(d + "/sub")
    expect_errno(errno.EISDIR, os.open, d + "/sub", os.O_WRONLY)


@check
def a_file_in_a_missing_directory_fails_with_enoent(d):
    expect_errno(errno.ENOENT, os.open, d + "/nodir/f", os.O_WRONLY | os.O_CREAT, 0o644)


@check
def a_name_longer_than_name_max_fails_with_enametoolong(d):
    expect_errno(errno.ENAMETOOLONG, os.open, d + "/" + "n" * 256, os.O_WRONLY | os.O_CREAT, 0o644)


# ---- read, write, lseek, ftruncate ----

@check
def read_at_end_of_file_returns_zero_bytes(d):
    put(d + "/f", b"abc")
    fd = os.open(d + "/f", os.O_RDONLY)
    expect(os.read(fd, 10) == b"abc" and os.read(fd, 10) == b"", "not at EOF")
    os.close(fd)


@check
def a_write_is_read_back_through_the_same_fd_after_lseek(d):
    fd = os.open(d + "/f", os.O_RDWR | os.O_CREAT, 0o644)
    os.write(fd, b"hello")
    os.lseek(fd, 0, os.SEEK_SET)
    got = os.read(fd, 10)
    os.close(fd)
    expect(got == b"hello", repr(got))


@check
def st_size_follows_each_write(d):
    fd = os.open(d + "/f", os.O_WRONLY | os.O_CREAT, 0o644)
    sizes = []
    for chunk in (b"a", b"bc", b"def"):
        os.write(fd, chunk)
        sizes.append(os.fstat(fd).st_size)
    os.close(fd)
    expect(sizes == [1, 3, 6], str(sizes))


@check
def pwrite_past_the_end_fills_the_gap_with_zeros(d):
    put(d + "/f", b"ab")
    fd = os.open(d + "/f", os.O_WRONLY)
    os.pwrite(fd, b"z", 5)
    os.close(fd)
    expect(get(d + "/f") == b"ab\0\0\0z", repr(get(d + "/f")))


@check
def ftruncate_shrinks_and_extends_with_zeros(d):
    put(d + "/f", b"abcdef")
    fd = os.open(d + "/f", os.O_RDWR)
    os.ftruncate(fd, 2)
    small = os.fstat(fd).st_size
    os.ftruncate(fd, 4)
    os.close(fd)
    expect(small == 2 and get(d + "/f") == b"ab\0\0", "%d %r" % (small, get(d + "/f")))


def truncated_under_a_writer(path, then):
    """Opens path for writing, writes hello, truncates it by path to 0, writes then (if any)
    through the first fd and closes it; returns what the file holds."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"hello")
    os.truncate(path, 0)
    if then:
        os.write(fd, then)
    os.close(fd)
    return get(path)


@check
def a_truncate_by_path_while_a_writer_holds_the_file_is_not_undone_by_its_close(d):
    got = truncated_under_a_writer(d + "/f", b"")
    expect(got == b"", repr(got))


@check
def a_write_after_a_truncate_by_path_keeps_its_offset_and_zeros_before_it(d):
    got = truncated_under_a_writer(d + "/f", b"x")  # at offset 5: the bytes cut are a hole
    expect(got == b"\0\0\0\0\0x", repr(got))


@check
def a_write_after_an_ftruncate_through_another_fd_does_not_restore_the_cut_bytes(d):
    put(d + "/f", b"abcdef")
    writer = os.open(d + "/f", os.O_WRONLY)
    os.write(writer, b"AB")
    other = os.open(d + "/f", os.O_RDWR)
    os.ftruncate(other, 3)
    os.close(other)
    os.write(writer, b"C")  # at offset 2
    os.close(writer)
    expect(get(d + "/f") == b"ABC", repr(get(d + "/f")))


@check
def lseek_end_gives_the_size(d):
    put(d + "/f", b"12345")
    fd = os.open(d + "/f", os.O_RDONLY)
    end = os.lseek(fd, 0, os.SEEK_END)
    os.close(fd)
    expect(end == 5, str(end))


@check
def writing_to_a_read_only_fd_fails_with_ebadf(d):
    put(d + "/f", b"x")
    fd = os.open(d + "/f", os.O_RDONLY)
    try:
        expect_errno(errno.EBADF, os.write, fd, b"y")
    finally:
        os.close(fd)


# ---- stat ----

@check
def a_file_has_st_nlink_1_and_a_directory_2_plus_its_subdirectories(d):
    put(d + "/f", b"x")
    os.mkdir(d + "/a")
    os.mkdir(d + "/b")
    got = (os.stat(d + "/f").st_nlink, os.stat(d).st_nlink, os.stat(d + "/a").st_nlink)
    expect(got == (1, 4, 2), str(got))


@check
def a_write_marks_mtime_and_ctime_for_update(d):
    # POSIX write(): "mark for update the last data modification and last file status change
    # timestamps". From an mtime set in 2001, a write must bring both to now.
    put(d + "/f", b"x")
    past = 10**18  # 2001-09-09
    os.utime(d + "/f", ns=(past, past))
    expect(os.stat(d + "/f").st_mtime_ns == past, "mtime_ns %d after utime" % os.stat(d + "/f").st_mtime_ns)
    before = time.time_ns() - 5 * 10**9  # the server's clock is this machine's: a few s of slack
    put(d + "/f", b"y")
    st = os.stat(d + "/f")
    expect(st.st_mtime_ns >= before, "mtime_ns %d after a write, want now" % st.st_mtime_ns)
    expect(st.st_ctime_ns >= st.st_mtime_ns, "ctime_ns %d before mtime_ns %d" % (st.st_ctime_ns, st.st_mtime_ns))


@check
def st_ino_differs_between_nodes_and_after_recreate(d):
    put(d + "/f", b"x")
    put(d + "/g", b"x")
    i1, ig = os.stat(d + "/f").st_ino, os.stat(d + "/g").st_ino
    os.unlink(d + "/f")
    put(d + "/f", b"x")
    expect(len({i1, ig, os.stat(d + "/f").st_ino}) == 3, "inode numbers repeat")


# ---- directories ----

@check
def mkdir_of_an_existing_name_fails_with_eexist(d):
    os.mkdir(d + "/sub")
    expect_errno(errno.EEXIST, os.mkdir, d + "/sub")


@check
def mkdir_in_a_missing_directory_fails_with_enoent(d):
    expect_errno(errno.ENOENT, os.mkdir, d + "/nodir/sub")


@check
def rmdir_of_a_non_empty_directory_fails_with_enotempty(d):
    os.mkdir(d + "/sub")
    put(d + "/sub/f", b"x")
    expect_errno(errno.ENOTEMPTY, os.rmdir, d + "/sub")


@check
def rmdir_of_a_file_fails_with_enotdir(d):
    put(d + "/f", b"x")
    expect_errno(errno.ENOTDIR, os.rmdir, d + "/f")


@check
def unlink_of_an_open_file_leaves_its_fd_reading_it_with_st_nlink_0_and_the_name_free(d):
    put(d + "/f", b"kept")
    fd = os.open(d + "/f", os.O_RDONLY)
    os.unlink(d + "/f")
    st = os.fstat(fd)
    data = os.pread(fd, 100, 0)
    os.close(fd)
    expect(st.st_nlink == 0 and data == b"kept" and not os.path.exists(d + "/f"),
           "st_nlink %d, read %r" % (st.st_nlink, data))


@check
def unlink_of_a_directory_fails_with_eisdir(d):
    os.mkdir(d + "/sub")
    expect_errno(errno.EISDIR, os.unlink, d + "/sub")


@check
def unlink_of_a_missing_name_fails_with_enoent(d):
    expect_errno(errno.ENOENT, os.unlink, d + "/missing")


@check
def readdir_lists_exactly_the_entries(d):
    put(d + "/f", b"x")
    os.mkdir(d + "/sub")
    got = sorted(os.listdir(d))
    expect(got == ["f", "sub"], str(got))


@check
def an_empty_directory_stays_a_directory(d):
    os.mkdir(d + "/sub")
    expect(stat.S_ISDIR(os.stat(d + "/sub").st_mode), "not a directory")


# ---- rename ----

@check
def rename_of_a_file_over_a_file_replaces_it(d):
    put(d + "/a", b"new")
    put(d + "/b", b"old")
    os.rename(d + "/a", d + "/b")
    expect(get(d + "/b") == b"new" and not os.path.lexists(d + "/a"), "not replaced")


@check
def rename_of_a_file_over_a_directory_fails_with_eisdir(d):
    put(d + "/a", b"x")
    os.mkdir(d + "/sub")
    expect_errno(errno.EISDIR, os.rename, d + "/a", d + "/sub")


@check
def rename_of_a_directory_over_a_file_fails_with_enotdir(d):
    os.mkdir(d + "/sub")
    put(d + "/f", b"x")
    expect_errno(errno.ENOTDIR, os.rename, d + "/sub", d + "/f")


@check
def rename_of_a_directory_over_an_empty_directory_replaces_it(d):
    os.mkdir(d + "/a")
    put(d + "/a/f", b"x")
    os.mkdir(d + "/b")
    os.rename(d + "/a", d + "/b")
    expect(get(d + "/b/f") == b"x" and not os.path.lexists(d + "/a"), "not replaced")


@check
def rename_of_a_directory_over_a_non_empty_one_fails_with_enotempty(d):
    os.mkdir(d + "/a")
    os.mkdir(d + "/b")
    put(d + "/b/f", b"x")
    expect_errno(errno.ENOTEMPTY, os.rename, d + "/a", d + "/b")


@check
def rename_of_a_name_to_itself_changes_nothing(d):
    put(d + "/f", b"x")
    os.rename(d + "/f", d + "/f")
    expect(get(d + "/f") == b"x", "changed")


@check
def rename_of_a_missing_name_fails_with_enoent(d):
    expect_errno(errno.ENOENT, os.rename, d + "/missing", d + "/other")


@check
def rename_of_a_directory_into_itself_fails_with_einval(d):
    os.mkdir(d + "/sub")
    expect_errno(errno.EINVAL, os.rename, d + "/sub", d + "/sub/inner")


# ---- what the mount does not support: the errno it answers ----

@check
def hard_links_fail_with_eperm(d):
    put(d + "/f", b"x")
    expect_errno(errno.EPERM, os.link, d + "/f", d + "/g")


@check
def symlinks_fail_with_eperm(d):
    expect_errno(errno.EPERM, os.symlink, "f", d + "/l")


@check
def fifos_fail_with_eperm(d):
    expect_errno(errno.EPERM, os.mkfifo, d + "/p")


@check
def chmod_and_chown_to_what_is_shown_succeed_and_other_values_fail_with_eperm(d):
    put(d + "/f", b"x")
    st = os.stat(d + "/f")
    os.chmod(d + "/f", stat.S_IMODE(st.st_mode))
    os.chown(d + "/f", st.st_uid, st.st_gid)
    expect_errno(errno.EPERM, os.chmod, d + "/f", stat.S_IMODE(st.st_mode) ^ 0o100)
    expect_errno(errno.EPERM, os.chown, d + "/f", st.st_uid + 1, -1)


@check
def utimensat_sets_the_mtime_to_the_millisecond_and_the_atime_follows_it(d):
    put(d + "/f", b"x")
    os.utime(d + "/f", ns=(5 * 10**17, 1000000000123456789))
    st = os.stat(d + "/f")
    expect(st.st_mtime_ns == 1000000000123000000, "mtime_ns %d" % st.st_mtime_ns)
    expect(st.st_atime_ns == st.st_mtime_ns, "atime_ns %d" % st.st_atime_ns)
    expect(get(d + "/f") == b"x", "data kept")
    os.utime(d + "/f")
    expect(os.stat(d + "/f").st_mtime > 1000000001, "utime(NULL) makes it now")


@check
def utimensat_of_the_atime_alone_fails_with_eperm_unless_it_is_what_is_shown(d):
    put(d + "/f", b"x")
    st = os.stat(d + "/f")
    omit = (1 << 30) - 2  # Linux's UTIME_OMIT, which Python's os module does not export
    fd = os.open(d + "/f", os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)

        class Timespec(ctypes.Structure):
            _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]
        times = (Timespec * 2)(Timespec(1000000000, 0), Timespec(0, omit))
        rc = libc.futimens(fd, times)
        expect(rc == -1 and ctypes.get_errno() == errno.EPERM, "futimens(atime only): %d errno %d" % (rc, ctypes.get_errno()))
        times = (Timespec * 2)(Timespec(st.st_mtime_ns // 10**9, st.st_mtime_ns % 10**9), Timespec(0, omit))
        expect(libc.futimens(fd, times) == 0, "futimens(atime = the shown one)")
    finally:
        os.close(fd)


@check
def read_only_stat_xattrs_fail_with_enotsup_and_other_namespaces_too(d):
    put(d + "/f", b"x")
    expect(os.getxattr(d + "/f", "user.zk.data_length") == b"1", "user.zk.data_length")
    expect_errno(errno.ENOTSUP, os.setxattr, d + "/f", "user.zk.version", b"9")
    expect_errno(errno.ENOTSUP, os.setxattr, d + "/f", "user.other", b"9")
    expect_errno(errno.ENODATA, os.getxattr, d + "/f", "user.zk.nosuch")


@check
def getxattr_of_data_past_the_xattr_limit_fails_with_e2big(d):
    put(d + "/f", b"y" * (64 * 1024 + 1))
    expect_errno(errno.E2BIG, os.getxattr, d + "/f", "user.zk.data")
    put(d + "/g", b"y" * (64 * 1024))
    expect(len(os.getxattr(d + "/g", "user.zk.data")) == 64 * 1024, "64 KiB read as an xattr")


@check
def data_past_the_limit_fails_with_efbig(d):
    put(d + "/f", b"x")
    expect_errno(errno.EFBIG, os.truncate, d + "/f", 1048576)


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        return 2
    root = sys.argv[1]
    word = sys.argv[2] if len(sys.argv) == 3 else ""
    failed = 0
    checks = [fn for fn in CHECKS if word in fn.__name__]
    for i, fn in enumerate(checks):
        d = os.path.join(root, "c%d" % i)
        try:
            os.mkdir(d)
            fn(d)
        except (Failed, OSError) as e:
            failed += 1
            what = errno.errorcode.get(e.errno, e.errno) if isinstance(e, OSError) else ""
            print("FAIL %s: %s %s" % (fn.__name__, what, e))
    print("posix: %d checks, %d failed" % (len(checks), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
