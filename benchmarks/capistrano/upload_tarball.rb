# A Capistrano 3 SCM plugin that deploys a prebuilt .tar.gz instead of a git checkout.
#
# Capistrano has no built-in way to deploy a build artifact, so projects write a plugin
# like this one (the capistrano-scm-* "copy"/"tarball" gems do the same): upload the
# tarball to each host with SSHKit's upload!, unpack it into the new release directory,
# delete the upload. It replaces the git plugin's three hooks and nothing else, so the
# rest of `cap <stage> deploy` (check, linked_dirs, symlink, cleanup, log) is stock.
#
# Settings: :tarball (local path, required); :tarball_upload_dir (remote, default
# <deploy_to>/tmp, so the upload lands on the same filesystem as the release).
require "capistrano/scm/plugin"
require "digest"

module Capistrano
  class UploadTarball < ::Capistrano::SCM::Plugin
    def set_defaults
      set_if_empty :tarball_upload_dir, -> { "#{fetch(:deploy_to)}/tmp" }
    end

    def register_hooks
      after "deploy:new_release_path", "upload_tarball:create_release"
      before "deploy:check", "upload_tarball:check"
      before "deploy:set_current_revision", "upload_tarball:set_current_revision"
    end

    def define_tasks
      namespace :upload_tarball do
        desc "Check that the tarball exists locally"
        task :check do
          tarball = fetch(:tarball)
          raise ArgumentError, "set :tarball to the artifact's path" if tarball.nil?
          raise ArgumentError, "tarball #{tarball} not found" unless File.file?(tarball)
        end

        desc "Upload the tarball to every host and unpack it into the release directory"
        task :create_release do
          tarball = fetch(:tarball)
          upload_dir = fetch(:tarball_upload_dir)
          on release_roles(:all) do
            remote = "#{upload_dir}/#{File.basename(release_path.to_s)}.tar.gz"
            execute :mkdir, "-p", release_path, upload_dir
            upload! tarball, remote
            execute :tar, "-xzf", remote, "-C", release_path
            execute :rm, "-f", remote
          end
        end

        desc "Record the tarball's sha256 as the revision (REVISION, revisions.log)"
        task :set_current_revision do
          set :current_revision, Digest::SHA256.file(fetch(:tarball)).hexdigest
        end
      end
    end
  end
end
