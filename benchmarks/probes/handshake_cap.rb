# Log in the way Capistrano does (net-ssh, the ssh_options of config/deploy.rb), run
# nothing, close: the relay counts this handshake's round trips. Run from the project folder.
require "capistrano/all"
load "config/deploy.rb"
load "config/deploy/bench.rb"
server = Capistrano::Configuration.env.servers.first
options = fetch(:ssh_options).merge(port: server.port)
Net::SSH.start(server.hostname, server.user, options) { |_ssh| }
