module libasync

go 1.19
