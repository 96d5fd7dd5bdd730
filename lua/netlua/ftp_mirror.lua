--- netlua.ftp_mirror: the engine behind `session:mirror` (netlua.ftp).
--
-- An incremental sync of a folder tree, either way, modelled on lftp's
-- `mirror`: files whose size and time match are skipped, copies get the
-- source's time, `delete` removes what the source no longer has,
-- `reverse` uploads.  The work is a queue of jobs (list a folder, copy a
-- file, delete a remote entry) run by up to `parallel` worker tasks, each
-- on a session of its own (the caller's session and clones of it), so
-- folders are listed and files copied on all connections at once.
--
-- Times: a listing read with MLSD gives the second; LIST gives the minute
-- for recent files and only the day for older ones (ls shows a year
-- instead of a time).  Two times are "the same" when they differ by no
-- more than that precision, as lftp compares them.  A downloaded file
-- gets the exact remote time: the listing's when it is exact, else MDTM's
-- when the server has it.  An uploaded file gets the local time on the
-- server through MFMT (or vsftpd's two-argument MDTM) where the server
-- takes it.
-- @module netlua.ftp_mirror
local core = require "netlua.core"
local sched = require "netlua.sched"
local drive = require "netlua.drive"

-- math.type is 5.3+; before, a number is an integer when it has no fraction
local mtype = math.type or function(x)
  if type(x) == "number" then return x % 1 == 0 and "integer" or "float" end
end

local M = {}

-- How deep mirror goes when max_depth is not given: a server that lists
-- a directory inside every directory must not take it down forever.
local MAX_DEPTH = 100

-- Listing precision of a LIST time: ls shows hh:mm for files of the last
-- six months and only the year beyond.
local HALF_YEAR = 183 * 86400

---------------------------------------------------------------------------
-- Options
---------------------------------------------------------------------------

local BOOLS = {"delete", "dry_run", "reverse", "only_newer", "ignore_time",
  "ignore_size", "resume"}

local function bad(name, want, v)
  error(("bad option '%s' to 'mirror' (%s expected, got %s)"):format(name, want,
    type(v) == "number" and tostring(v) or type(v)), 4)
end

-- A glob as a Lua pattern: `*` any run of characters but `/`, `**` any
-- run at all, `?` one character but `/`, `[...]` a set as in the shell;
-- everything else literal.
local function glob_pattern(g)
  local out, i, n = {"^"}, 1, #g
  while i <= n do
    local c = g:sub(i, i)
    if c == "*" and g:sub(i + 1, i + 1) == "*" then
      out[#out + 1] = ".*"; i = i + 2
    elseif c == "*" then
      out[#out + 1] = "[^/]*"; i = i + 1
    elseif c == "?" then
      out[#out + 1] = "[^/]"; i = i + 1
    elseif c == "[" and g:find("]", i + 2, true) then
      local j = g:find("]", i + 2, true)
      local set = g:sub(i + 1, j - 1):gsub("^!", "^"):gsub("%%", "%%%%")
      out[#out + 1] = "[" .. set .. "]"; i = j + 1
    else
      out[#out + 1] = c:gsub("%W", "%%%0"); i = i + 1
    end
  end
  out[#out + 1] = "$"
  return table.concat(out)
end

-- include/exclude: a glob, an array of globs, or a function(relpath,
-- entry) -> boolean.  A glob with no "/" is matched against the base
-- name, one with "/" against the path relative to the top folder.
local function matcher(name, v)
  if v == nil then return nil end
  if type(v) == "function" then return v end
  if type(v) == "string" then v = {v} end
  if type(v) ~= "table" then bad(name, "glob, array of globs or function", v) end
  local pats = {}
  for i, g in ipairs(v) do
    if type(g) ~= "string" then bad(name .. "[" .. i .. "]", "string", g) end
    pats[#pats + 1] = {glob_pattern(g), g:find("/", 1, true) ~= nil}
  end
  return function(rel)
    local base = rel:match("[^/]*$")
    for _, p in ipairs(pats) do
      if (p[2] and rel or base):find(p[1]) then return true end
    end
    return false
  end
end
M.glob_pattern = glob_pattern

local KNOWN = {parallel = true, max_depth = true, symlinks = true, progress = true,
  include = true, exclude = true}
for _, k in ipairs(BOOLS) do KNOWN[k] = true end

local function checkopts(opts)
  -- a misspelt option must not pass unseen: `dryrun = true` next to
  -- `delete = true` would delete for real
  for k in pairs(opts) do
    if not KNOWN[k] then error(("unknown option '%s' to 'mirror'"):format(tostring(k)), 4) end
  end
  local o = {}
  for _, k in ipairs(BOOLS) do
    local v = opts[k]
    if v ~= nil and type(v) ~= "boolean" then bad(k, "boolean", v) end
    o[k] = v or false
  end
  o.parallel = opts.parallel or 4
  if mtype(o.parallel) ~= "integer" or o.parallel < 1 or o.parallel > 64 then
    error("bad option 'parallel' (integer 1..64 expected)", 3)
  end
  o.max_depth = opts.max_depth
  if o.max_depth ~= nil and (mtype(o.max_depth) ~= "integer" or o.max_depth < 0) then
    error("bad option 'max_depth' (integer >= 0 expected)", 3)
  end
  o.symlinks = opts.symlinks or "skip"
  if o.symlinks ~= "skip" and o.symlinks ~= "follow" and o.symlinks ~= "link" then
    error("bad option 'symlinks' (\"skip\", \"follow\" or \"link\" expected)", 3)
  end
  if opts.progress ~= nil and type(opts.progress) ~= "function" then
    bad("progress", "function", opts.progress)
  end
  o.progress = opts.progress
  o.include = matcher("include", opts.include)
  o.exclude = matcher("exclude", opts.exclude)
  return o
end

---------------------------------------------------------------------------
-- Comparing
---------------------------------------------------------------------------

-- How far a listed time may be from the true one.
local function precision(kind, t, now)
  if kind == "mlsd" or t == nil then return 0 end
  if math.abs(now - t) > HALF_YEAR then return 86400 end
  return 60
end

-- Whether the source entry src {size=, modify=, prec=} must be copied
-- over the target entry dst (nil: missing), under the options.
local function needs_copy(src, dst, o)
  if dst == nil then return true end
  local prec = math.max(src.prec or 0, dst.prec or 0)
  local same_size = o.ignore_size or src.size == nil or dst.size == nil or src.size == dst.size
  local same_time = o.ignore_time or src.modify == nil or dst.modify == nil
    or math.abs(src.modify - dst.modify) <= prec
  if same_size and same_time then return false end
  if o.only_newer and not o.ignore_time and src.modify and dst.modify then
    -- copied only when the source may be the newer one
    return src.modify + prec > dst.modify
  end
  return true
end
M._needs_copy = needs_copy

-- A listed name that could leave the folder it is listed in ("..", "a/b",
-- a NUL) is never used.
local function bad_name(n)
  return n == "" or n == "." or n == ".." or n:find("[/%z]") ~= nil
end

local function join(a, b)
  if a == "" then return b end
  if a == "/" then return "/" .. b end
  return a .. "/" .. b
end

-- "YYYYMMDDHHMMSS" of epoch seconds t, UTC (MDTM/MFMT form).
local function stamp(t) return os.date("!%Y%m%d%H%M%S", t) end

---------------------------------------------------------------------------
-- The run
---------------------------------------------------------------------------

-- Removes a local path, folders with everything in them.
local function remove_tree(path)
  local st = core.fs_stat(path, true)
  if st and st.type == "dir" then
    local list = core.fs_list(path) or {}
    for _, e in ipairs(list) do
      local ok, msg, code = remove_tree(path .. "/" .. e.name)
      if not ok then return nil, msg, code end
    end
  end
  local ok, err = os.remove(path)
  if not ok then return nil, err, "io" end
  return true
end

-- lib: {listdir = function(s, abs, what, fields), features = function(s),
-- share_features = function(s, clone)} from netlua.ftp (or netlua.sftp).
function M.run(self, lib, remote_dir, local_dir, opts)
  local o = checkopts(opts)
  local report = {files = 0, bytes = 0, skipped = 0, transferred = {}, deleted = {}, failed = {}}
  local rtop = self:_abspath(remote_dir)
  -- job queues, each with its head and tail: folders are listed first
  local dirs, files = {h = 1, t = 0}, {h = 1, t = 0}
  local busy, workers, abort = 0, 1, nil
  local wake = sched.event()
  local now = os.time()
  -- the fields mirror reads: fewer fields make smaller entries
  local fields = {"type", "size", "modify"}
  if o.symlinks == "link" then fields[4] = "target" end

  local function fail(rel, msg, code)
    report.failed[#report.failed + 1] = {path = rel, message = msg, code = code}
  end
  local function deleted(rel) report.deleted[#report.deleted + 1] = rel end
  local function want(rel, e, isdir)
    if isdir then return not (o.exclude and o.exclude(rel, e)) end
    if o.include and not o.include(rel, e) then return false end
    return not (o.exclude and o.exclude(rel, e))
  end

  local spawn_worker
  local function queue(q, job)
    q.t = q.t + 1
    q[q.t] = job
    wake:set()
    spawn_worker()
  end

  -- one file job: copy src to dst (both entries; rel its relative path)
  local copy

  -- The target side's entry d is in the way of a copy: with delete it is
  -- removed now, on this session (what replaces it comes right after and
  -- must not race the removal); without, the path fails.
  local function clear_way(sess, rel, n, d, sdir, ddir, why)
    if not o.delete then
      fail(join(rel, n), ("mirror %s: %s"):format(join(rel, n), why), "exists")
      return false
    end
    copy(rel, n, nil, d, sdir, ddir, "delete", sess)
    return true
  end

  -- A folder: rel ("" for the top), its remote and local paths, depth.
  local function list_job(rel, rdir, ldir, depth)
    return function(sess)
      local what = "mirror " .. (rel == "" and rdir or rel)
      -- the source side
      local rlist, kind, code = lib.listdir(sess, rdir, what, fields)
      local llist, lmsg, lcode = core.fs_list(ldir)
      if o.reverse then
        -- the source is local: a folder that cannot be read is a failure,
        -- never an empty one (delete would empty the server)
        if not llist then
          if rel == "" then abort = {"mirror: " .. lmsg, lcode} else fail(rel, lmsg, lcode) end
          return
        end
        -- a remote folder not made yet (dry_run) is empty: the server's
        -- refusal (an FTP reply code) or SFTP's "nofile", never a
        -- broken connection
        if not rlist and (type(code) == "number" or code == "nofile") and o.dry_run then
          rlist, kind = {}, "mlsd"
        end
      end
      if not rlist then
        if rel == "" then abort = {kind, code} else fail(rel, kind, code) end
        return
      end
      llist = llist or {}
      local remote, localn = {}, {}
      for _, e in ipairs(rlist) do
        if not bad_name(e.name) then
          e.prec = precision(kind, e.modify, now)
          remote[e.name] = e
        end
      end
      for _, e in ipairs(llist) do
        if e.type == "link" and o.reverse and o.symlinks == "follow" then
          local st = core.fs_stat(join(ldir, e.name))
          if st then st.name = e.name; e = st end
        end
        localn[e.name] = e
      end
      local src, dst, sdir, ddir = remote, localn, rdir, ldir
      if o.reverse then src, dst, sdir, ddir = localn, remote, ldir, rdir end
      local names = {}
      for n in pairs(src) do names[#names + 1] = n end
      table.sort(names)
      for _, n in ipairs(names) do
        -- one pass of repeat: break skips to the next name (5.1 has no goto)
        repeat
          local e, r = src[n], join(rel, n)
          local t = e.type
          if t == "link" then
            -- with reverse a link still here is one fs_stat could not
            -- follow (dangling), or symlinks = "link", which has no
            -- server-side meaning: both are skipped
            if o.symlinks == "skip" or o.reverse then break end
            if o.symlinks == "link" and not o.reverse and e.target then
              copy(rel, n, e, dst[n], sdir, ddir, "link")
              break
            end
            t = "follow"
          end
          if t == "dir" or t == "follow" then
            if not want(r, e, true) then break end
            if o.max_depth and depth >= o.max_depth then break end
            if not o.max_depth and depth >= MAX_DEPTH then
              abort = {("mirror: %s is more than %d levels deep (set max_depth)")
                :format(join(rdir, n), MAX_DEPTH), "limit"}
              return
            end
            local d = dst[n]
            if d and d.type ~= "dir" and t == "dir" then
              if not clear_way(sess, rel, n, d, sdir, ddir, "a file is in the way of a folder") then
                break
              end
              d = nil
            end
            if t == "follow" then
              -- a remote link: a folder if it lists as one, else a file
              queue(dirs, function(s2)
                local l2 = lib.listdir(s2, join(rdir, n), what, fields)
                if l2 then
                  if not o.dry_run then core.mkdir_p(join(ldir, n)) end
                  return list_job(r, join(rdir, n), join(ldir, n), depth + 1)(s2)
                end
                if want(r, e, false) then
                  -- the listing gave the link's own size and time: the
                  -- target's size is asked, its time taken from MDTM
                  local t = {name = n, type = "file", size = s2:size(join(rdir, n)), prec = 60}
                  if needs_copy(t, dst[n], o) then copy(rel, n, t, dst[n], sdir, ddir, "file", s2)
                  else report.skipped = report.skipped + 1 end
                end
              end)
              break
            end
            if not o.dry_run then
              if o.reverse then
                if not d then
                  local ok, m2, c2 = sess:mkd(join(rdir, n))
                  if not ok then fail(r, m2, c2) break end
                end
              else
                local ok, m2, c2 = core.mkdir_p(join(ldir, n))
                if not ok then fail(r, m2, c2) break end
              end
            end
            queue(dirs, list_job(r, join(rdir, n), join(ldir, n), depth + 1))
          elseif t == "file" then
            if not want(r, e, false) then break end
            local d = dst[n]
            if d and d.type == "dir" then
              if not clear_way(sess, rel, n, d, sdir, ddir, "a folder is in the way of a file") then
                break
              end
              d = nil
            end
            if needs_copy(e, d, o) then
              copy(rel, n, e, d, sdir, ddir, "file")
            else
              report.skipped = report.skipped + 1
            end
          end
        until true
      end
      if o.delete then
        local gone = {}
        for n, e in pairs(dst) do
          local keep = src[n] ~= nil or bad_name(n)
          -- our own temporary file of a file being copied
          if not keep and not o.reverse and n:sub(-5) == ".part" and src[n:sub(1, -6)] then
            keep = o.resume
          end
          -- what include/exclude leaves out is left alone, as lftp does
          if not keep and not want(join(rel, n), e, e.type == "dir") then keep = true end
          if not keep then gone[#gone + 1] = n end
        end
        table.sort(gone)
        for _, n in ipairs(gone) do copy(rel, n, nil, dst[n], sdir, ddir, "delete") end
      end
    end
  end

  -- Local side of copy jobs -------------------------------------------------

  local function progress_for(r)
    if not o.progress then return nil end
    return function(done, total) o.progress(r, done, total) end
  end

  -- a download of remote entry e into ldir/n
  local function download(sess, r, e, rpath, lpath)
    if o.resume and e.modify then
      -- a .part older than the remote file holds bytes of another version:
      -- continuing it would make a file of the right size and wrong content
      local part = core.fs_stat(lpath .. ".part")
      if part and part.modify + (e.prec or 0) < e.modify then os.remove(lpath .. ".part") end
    end
    -- the listing's time is rounded: MDTM gives the second, asked in
    -- get's own operation before the transfer, so that a file changed in
    -- between gets the older time (and is fetched again next run), never
    -- the newer one
    local exact = (e.prec ~= 0 or e.modify == nil) and lib.features(sess).MDTM
    local ok, second, code = sess:get(rpath, lpath, {resume = o.resume, size = e.size,
      progress = progress_for(r), mtime = exact or nil})
    if not ok then return nil, second, code end
    -- get gave the file the time its MDTM said; else the listing's
    local stamped = exact and second
    if not stamped and e.modify then core.fs_setmtime(lpath, e.modify) end
    return true
  end

  -- an upload of local entry e (lpath) to rpath: under a temporary name,
  -- checked with SIZE, then renamed and given the local time
  local function upload(sess, r, e, lpath, rpath)
    local tmp = rpath:gsub("([^/]*)$", ".%1.part")
    local what = "mirror " .. r
    local f, ferr = io.open(lpath, "rb")
    if not f then return nil, what .. ": " .. ferr, "io" end
    local ok, msg, code = sess:put(f, tmp, {progress = progress_for(r)})
    f:close()
    if not ok then sess:_ask(what, "DELE " .. tmp) return nil, msg, code end
    -- the server's own count must match (a server without SIZE is taken
    -- at its word)
    local n, m2, c2 = sess:size(tmp)
    if n == nil and type(c2) ~= "number" then return nil, m2, c2 end
    if n ~= nil and n ~= e.size then
      sess:_ask(what, "DELE " .. tmp)
      return nil, ("%s: %d of %d bytes arrived"):format(what, n, e.size), "partial"
    end
    ok, msg, code = sess:rename(tmp, rpath)
    if not ok then sess:_ask(what, "DELE " .. tmp) return nil, msg, code end
    local f = lib.features(sess)
    if e.modify then
      if f.MFMT then
        sess:_ask(what, "MFMT " .. stamp(e.modify) .. " " .. rpath)
      elseif f.MDTM then
        sess:_ask(what, "MDTM " .. stamp(e.modify) .. " " .. rpath)
      end
    end
    return true
  end

  -- a remote tree removed (reverse with delete)
  local function remote_remove(sess, rpath, isdir, what)
    if not isdir then return sess:delete(rpath) end
    local list, msg, code = lib.listdir(sess, rpath, what, fields)
    if not list then return nil, msg, code end
    for _, e in ipairs(list) do
      if not bad_name(e.name) then
        local ok, m2, c2 = remote_remove(sess, join(rpath, e.name), e.type == "dir", what)
        if not ok then return nil, m2, c2 end
      end
    end
    return sess:rmd(rpath)
  end

  copy = function(rel, n, e, d, sdir, ddir, how, now_sess)
    local r = join(rel, n)
    if how == "delete" then
      deleted(r)
      if o.dry_run then return end
      if o.reverse then
        local job = function(sess)
          local ok, msg, code = remote_remove(sess, join(ddir, n), d.type == "dir", "mirror " .. r)
          if not ok then fail(r, msg, code) end
        end
        if now_sess then job(now_sess) else queue(files, job) end
      else
        local ok, msg, code = remove_tree(join(ddir, n))
        if not ok then fail(r, msg, code) end
      end
      return
    end
    report.transferred[#report.transferred + 1] = r
    report.files = report.files + 1
    if how == "link" then
      if not o.dry_run then
        local lp = join(ddir, n)
        if d then remove_tree(lp) end
        local ok, msg, code = core.fs_symlink(e.target, lp)
        if not ok then fail(r, msg, code) end
      end
      return
    end
    report.bytes = report.bytes + (e.size or 0)
    if o.dry_run then return end
    local job = function(sess)
      local ok, msg, code
      local pok, perr = drive.pcall(function()
        if o.reverse then
          ok, msg, code = upload(sess, r, e, join(sdir, n), join(ddir, n))
        else
          ok, msg, code = download(sess, r, e, join(sdir, n), join(ddir, n))
        end
      end)
      if not pok then ok, msg, code = nil, tostring(perr), "error" end
      if not ok then
        report.files = report.files - 1
        report.bytes = report.bytes - (e.size or 0)
        for i = #report.transferred, 1, -1 do
          if report.transferred[i] == r then table.remove(report.transferred, i) break end
        end
        fail(r, msg, code)
      end
    end
    if now_sess then job(now_sess) else queue(files, job) end
  end

  -- Workers ----------------------------------------------------------------

  local function work(sess)
    while not abort do
      local job
      local q = dirs.h <= dirs.t and dirs or files.h <= files.t and files
      if q then
        job = q[q.h]; q[q.h] = nil; q.h = q.h + 1
      end
      if job then
        busy = busy + 1
        job(sess)
        busy = busy - 1
      elseif busy == 0 then
        wake:set()    -- nothing queued and nobody can queue more: done
        return
      else
        wake:clear()
        wake:wait()
      end
    end
    wake:set()
  end

  local helpers = {}
  -- a worker on a clone starts only when jobs wait and every worker is busy
  spawn_worker = function()
    -- workers spawned but not yet busy count as idle
    local waiting = (dirs.t - dirs.h + 1) + (files.t - files.h + 1)
    if workers >= o.parallel or waiting <= workers - busy then return end
    workers = workers + 1
    helpers[#helpers + 1] = sched.spawn(function()
      local ok, clone = drive.pcall(self._clone, self)
      if not ok then workers = workers - 1 return end
      lib.share_features(self, clone)
      work(clone)
      clone:close()
    end)
  end

  local function run_workers()
    if o.reverse then
      local ok, msg, code
      if not o.dry_run then ok, msg, code = self:makedirs(rtop) else ok = true end
      if not ok then abort = {msg, code} return end
    elseif not o.dry_run then
      local ok, msg, code = core.mkdir_p(local_dir)
      if not ok then abort = {"mirror: " .. msg, code} return end
    end
    dirs.t, dirs[1] = 1, list_job("", rtop, local_dir, 0)
    work(self)
    for _, co in ipairs(helpers) do sched.join(co) end
  end

  if core.coop_task() then
    run_workers()
  elseif o.parallel == 1 then
    -- one connection and nothing beside it: its calls wait as any call
    -- outside a task does, without a turn of a scheduler per wait
    local ok, err = drive.pcall(run_workers)
    if not ok then return nil, "mirror: " .. tostring(err), "error", report end
  else
    -- outside a task: the same workers, under a scheduler of their own
    local ok, err = sched.run(run_workers)
    if not ok then return nil, "mirror: " .. tostring(err), "error", report end
  end
  table.sort(report.transferred)
  table.sort(report.deleted)
  table.sort(report.failed, function(a, b) return a.path < b.path end)
  if abort then return nil, abort[1], abort[2], report end
  local nf = #report.failed
  if nf > 0 then
    -- the copy is not whole: a script that asserts must hear of it
    local f = report.failed[1]
    return nil, ("mirror: %d of %d failed; %s"):format(nf, nf + report.files
      + #report.deleted, tostring(f.message)), f.code, report
  end
  return report
end

return M
